"""The EMHMM port against the toolbox's own outputs, for any study in the toolbox reference schema.

The reference is found by ``em.reference_folder()``: ``$HSI_EMHMM_REFERENCE`` (a folder holding a
toolbox run's ``input.json`` and ``output.json``, schema in
``hsi_core/eyemovements/reference_data/golden/README.md``), else ``reference/emhmm/golden`` beside
the shared data (``hsi_core.paths``, so ``HSI_SHARED_DATA`` moves it), else the copy shipped with
the package (EMHMM v0.80 under GNU Octave 7.3). To test the port on your own study, run the
toolbox's ``run.m`` on it and point ``HSI_EMHMM_REFERENCE`` at the folder; nothing here is specific
to the shipped study: K candidates, VB and VHEM options, seeds and mu0 come from the run's
``output.json``, and every threshold is relative to the study's size.

Random-start results are compared one-sided: the port may find a better optimum than the toolbox
(its random streams differ from Octave's), never a much worse one.
"""

import json
import shutil

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from hsi_core import eyemovements as em

#: a bound within this many nats counts as the same optimum
SAME_OPTIMUM_NATS = 0.05
#: share of (viewer, image, K) bounds that must reach the toolbox's optimum (or better)
MIN_SHARE_AT_OPTIMUM = 0.9
#: no bound may fall short of the toolbox's by more than this fraction of its magnitude
MAX_RELATIVE_SHORTFALL = 0.01
#: a K choice is compared where the toolbox's margin between its best two K exceeds this
CLEAR_MARGIN_NATS = 2.0


@pytest.fixture(scope="module")
def ref():
    return em.load_reference()


_hmm = em.recorded_hmm


def _close(ours, theirs, rtol):
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(theirs, float).reshape(np.shape(ours)),
                               rtol=rtol, atol=0)


def test_the_reference_is_found_through_hsi_core_paths(tmp_path, monkeypatch):
    """HSI_EMHMM_REFERENCE first, then <shared>/../reference/emhmm/golden as HSI_SHARED_DATA places it,
    then the shipped copy (a fresh clone still runs the golden check)."""
    mine = tmp_path / "my_study"
    mine.mkdir()
    for name in ("input.json", "output.json"):
        shutil.copy(em.SHIPPED_REFERENCE / name, mine / name)
    shared = tmp_path / "elsewhere" / "shared"
    (shared / "data").mkdir(parents=True)
    golden = shared / "reference" / "emhmm" / "golden"
    shutil.copytree(mine, golden)
    monkeypatch.setenv("HSI_SHARED_DATA", str(shared / "data"))
    monkeypatch.delenv(em.REFERENCE_ENV, raising=False)
    assert em.reference_folder() == golden
    monkeypatch.setenv(em.REFERENCE_ENV, str(mine))
    assert em.reference_folder() == mine
    assert em.load_reference().folder == mine
    monkeypatch.setenv(em.REFERENCE_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="input.json and output.json"):
        em.reference_folder()
    monkeypatch.delenv(em.REFERENCE_ENV)
    monkeypatch.setenv("HSI_SHARED_DATA", "off")
    assert em.reference_folder() == em.SHIPPED_REFERENCE
    assert (em.SHIPPED_REFERENCE / "README.md").is_file() and (em.SHIPPED_REFERENCE / "TOOLBOX_PROVENANCE.md").is_file()


def test_the_shipped_reference_is_the_toolbox_run(ref):
    """The shipped outputs are the toolbox's, unedited: the input checksum output.json recorded."""
    inp = json.loads((em.SHIPPED_REFERENCE / "input.json").read_text())
    n = sum(len(t) for s in inp["subjects"] for stim in s["fixations"] for t in stim)
    meta = json.loads((em.SHIPPED_REFERENCE / "output.json").read_text())["meta"]
    assert n == sum(len(t) for row in em.load_reference(em.SHIPPED_REFERENCE).paths for p in row for t in p)
    assert "v0.80" in json.dumps(meta)


def test_vbhmm_from_a_fixed_initial_gmm_matches_the_toolbox(ref):
    opt = ref.vb_options()
    for case in ref.output["deterministic"]["vbhmm_initgmm"]:
        j, i = case["stimulus"] - 1, case["subject"] - 1
        g = case["initgmm"]
        ours = em.fit_from_gmm(ref.paths[j][i], np.array(g["mean"]), np.array(g["cov"]), np.array(g["prior"]),
                               ref.mu0s[j], opt)
        theirs = case["hmm"]
        for name in ("prior", "trans", "means", "covs", "N", "N1", "M"):
            _close(getattr(ours, name), theirs[name], 1e-8)
        _close(ours.LL, theirs["LL"], 1e-8)
        for name in ("alpha", "epsilon", "beta", "v", "m", "W"):
            _close(ours.varpar[name], theirs["varpar"][name], 1e-8)


def test_vhem_loop_from_a_fixed_start_matches_the_toolbox(ref):
    out = ref.output
    fixture = out["deterministic"]["vhem_step_fixed_init"]
    hmms = [[_hmm(r) for r in row] for row in out["individual_hmms"]]
    init = [[hmms[j][i - 1] for i in pair] for j, pair in enumerate(fixture["init_pairs_subject_index"])]
    ours = em.step_from_hmms(hmms, init, ref.vhem_options())
    _close(ours["LogL"], fixture["LogL"], 1e-8)
    _close(ours["Z"], fixture["Z"], 1e-8)
    assert list(np.argmax(ours["Z"], 1) + 1) == list(np.atleast_1d(fixture["label"]))
    for j, row in enumerate(fixture["group_hmms"]):
        for g, r in enumerate(row):
            mine, theirs = ours["group_hmms"][j][g], _hmm(r)
            for name in ("prior", "trans", "means", "covs"):
                _close(getattr(mine, name), getattr(theirs, name), 1e-8)


def test_per_fixation_log_likelihoods_of_the_recorded_group_hmms(ref):
    out, paths = ref.output, ref.paths
    groups = [[_hmm(r) for r in row] for row in out["cocluster"]["group_hmms"]]
    for i, per_stim in enumerate(out["loglik"]["LL_trials"]):
        for j, per_group in enumerate(per_stim):
            for g, values in enumerate(per_group):
                if not paths[j][i]:
                    continue
                _close(em.loglik(groups[j][g], paths[j][i]), values, 1e-10)
                _close(em.loglik(groups[j][g], paths[j][i], normalise=False),
                       out["loglik"]["LL_trials_unnormalised"][i][j][g], 1e-10)
    LL = em.group_logliks(paths, groups)
    _close(LL, np.array(out["loglik"]["LL"]), 1e-10)
    if LL.shape[2] == 2:
        _close(em.ef_scale(LL[:, :, 0].sum(1), LL[:, :, 1].sum(1)), out["loglik"]["AB"], 1e-10)


@pytest.fixture(scope="module")
def from_random_starts(ref):
    """The whole pipeline from random starts with the toolbox run's own K candidates and options."""
    hmms = em.fit_like_toolbox(ref)
    co = em.cocluster(hmms, ref.vhem_options())
    return hmms, co


def test_random_starts_choose_the_toolbox_k_where_the_margin_is_clear(ref, from_random_starts):
    out = ref.output
    hmms, _ = from_random_starts
    pairs, checked = 0, 0
    for j, row in enumerate(out["individual_hmms"]):
        for i, r in enumerate(row):
            if r is None:
                continue
            pairs += 1
            scores = np.sort(np.atleast_1d(np.asarray(r["model_LL"], float)))[::-1]
            if len(scores) == 1 or scores[0] - scores[1] > CLEAR_MARGIN_NATS:
                assert hmms[j][i].n_states == out["chosen_K"][j][i], (j, i)
                checked += 1
    assert checked >= pairs / 2, f"only {checked} of {pairs} viewer-image pairs have a clear K margin"
    # the bounds L(K) + log K!, every K: one-sided, a better optimum is allowed, a much worse one is not
    ours = np.array([np.asarray(hmms[j][i].model_LL) for j, row in enumerate(out["individual_hmms"])
                     for i, r in enumerate(row) if r is not None])
    theirs = np.array([np.atleast_1d(np.asarray(r["model_LL"], float)) for row in out["individual_hmms"]
                       for r in row if r is not None])
    shortfall = theirs - ours
    assert np.mean(shortfall <= SAME_OPTIMUM_NATS) >= MIN_SHARE_AT_OPTIMUM
    assert np.all(shortfall <= MAX_RELATIVE_SHORTFALL * np.abs(theirs)), shortfall.max()


def _match_groups(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """theirs_group -> our group, by the largest overlap."""
    K = max(ours.max(), theirs.max()) + 1
    overlap = np.zeros((K, K))
    np.add.at(overlap, (theirs, ours), 1)
    a, b = linear_sum_assignment(-overlap)
    return b[np.argsort(a)]


def test_random_starts_give_the_toolbox_partition_and_ef_signs(ref, from_random_starts):
    out, paths = ref.output, ref.paths
    hmms, co = from_random_starts
    theirs = np.array(out["cocluster"]["label"]) - 1
    assert adjusted_rand_score(theirs, co.labels) == 1.0
    ours_of = _match_groups(co.labels, theirs)
    LL = em.group_logliks(paths, co.group_hmms)
    if LL.shape[2] == 2:
        ab = em.ef_scale(LL[:, :, ours_of[0]].sum(1), LL[:, :, ours_of[1]].sum(1))
        np.testing.assert_array_equal(np.sign(ab), np.sign(out["loglik"]["AB"]))
    # a co-clustering optimum at least as good as the toolbox's best trial, up to 0.1 %
    their_LogL = float(out["cocluster"]["LogL"])
    assert co.LogL >= their_LogL - 1e-3 * abs(their_LogL)
    # ROI centres after matching groups and ROI order: within a quarter of the ROIs' own spread
    dist, spread = [], []
    for j, row in enumerate(out["cocluster"]["group_hmms"]):
        for g, r in enumerate(row):
            mine, other = co.group_hmms[j][ours_of[g]], _hmm(r)
            cost = np.linalg.norm(mine.means[:, None, :2] - other.means[None, :, :2], axis=-1)
            a, b = linear_sum_assignment(cost)
            dist.extend(cost[a, b])
            spread.extend(np.sqrt(np.linalg.eigvalsh(other.covs[:, :2, :2]).mean(-1)))
    print("ROI centre distances (px):", np.round(dist, 2), "ROI spread (px):", np.round(np.median(spread), 1))
    assert np.median(dist) < 0.25 * np.median(spread)
