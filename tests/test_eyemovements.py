import itertools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from hsi_core import datasets, demo
from hsi_core import eyemovements as em

N_IMAGES = 24  # the demo world's scanpath stimuli


@pytest.fixture(scope="module")
def scanpaths(demo_world):
    tasks = {t: datasets.load_scanpaths(demo_world / f"scanpaths/{t}/fixations.mat") for t in ("free_viewing", "explanation")}
    truth = demo.load_truth(demo_world)["scanpaths"]
    return tasks, np.array(truth["viewer_groups"]), (truth["height"], truth["width"])


def _paths(tasks, task_names, n):
    return [[[tasks[t][i][v][:, :2]] for t in task_names for v in range(len(tasks[t][i]))] for i in range(n)]


def _analyse(paths, size, seed=0):
    hmms = em.fit_individual(paths, [size] * len(paths), K_values=(1, 2, 3), opt=em.VBOptions(numtrials=10), seed=seed)
    co = em.cocluster(hmms, em.VHEMOptions(trials=20, tau=em.median_length(paths), seed=seed))
    return hmms, co


@pytest.fixture(scope="module")
def free_viewing(scanpaths):
    tasks, groups, size = scanpaths
    paths = _paths(tasks, ["free_viewing"], N_IMAGES)
    return paths, _analyse(paths, size)


def test_vhem_recovers_the_planted_groups_that_dispersion_cannot_separate(scanpaths, free_viewing):
    tasks, groups, size = scanpaths
    paths, (hmms, co) = free_viewing
    assert adjusted_rand_score(groups, co.labels) >= 0.8
    explorative = em.explorative_index(co.group_hmms)
    assert {groups[i] for i in np.flatnonzero(co.labels == explorative)} == {"explorative"}
    # the planted groups are not separable by how spread out the fixations are
    dispersion = np.array([[np.linalg.norm(p[0] - p[0].mean(0), axis=1).mean() for p in row] for row in paths]).mean(0)
    assert max(adjusted_rand_score(groups, dispersion > c) for c in dispersion) < 0.8
    # groups are unequal in size
    assert sorted(co.group_sizes) == sorted(np.unique(groups, return_counts=True)[1].tolist())


def test_the_old_linkage_method_fails_where_vhem_succeeds(scanpaths):
    """On the same 12 demo images: VHEM recovers the planted groups, the average-linkage stand-in
    does not (measured: ARI 1.00 vs 0.16)."""
    tasks, groups, size = scanpaths
    paths = _paths(tasks, ["free_viewing"], 12)
    _, co = _analyse(paths, size)
    assert adjusted_rand_score(groups, co.labels) >= 0.8
    study = em.Study([[p[0] for p in row] for row in paths], [size] * len(paths))
    labels = em.linkage_cocluster(em.divergence_matrix(study, em.fit_all(study, k_max=3, progress=False)))
    assert adjusted_rand_score(groups, labels) < 0.8


def test_finds_the_planted_task_difference(scanpaths):
    tasks, groups, size = scanpaths
    n, viewers = 12, len(groups)
    paths = _paths(tasks, ["free_viewing", "explanation"], n)
    hmms, co = _analyse(paths, size, seed=1)
    LL = em.group_logliks(paths, co.group_hmms)
    x = em.explorative_index(co.group_hmms)
    ef = em.ef_scale(LL[:, :, x].sum(1), LL[:, :, 1 - x].sum(1))
    result = em.paired_t(ef[viewers:], ef[:viewers])  # explanation vs free viewing, per viewer
    assert result.t < 0 and result.p < 0.05 and result.d < 0


def test_group_separation_labels_the_rows_by_the_explorative_group():
    """Each row is the named group's own test; fails if rows are ordered or named by group index."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    LL = rng.normal(-10, 0.1, (8, 3, 2))
    LL[labels == 0, :, 0] += 1.0  # group 0's members fit group 0's HMMs better, and vice versa
    LL[labels == 1, :, 1] += 1.0
    for explorative in (0, 1):
        rows = em.group_separation(LL, labels, explorative)
        assert [r["group"] for r in rows] == ["explorative", "focused"]
        assert rows[0]["viewers"] == int((labels == explorative).sum())
        assert rows[1]["viewers"] == int((labels != explorative).sum())
        assert rows[0]["t"] > 0 and rows[1]["t"] > 0
    LL[labels == 1, :, 1] -= 2.0  # now group 1's members fit group 0 better: its own test turns negative
    rows = em.group_separation(LL, labels, explorative=1)
    assert rows[0]["t"] < 0 and rows[1]["t"] > 0


def test_explorative_index_reads_transitions_or_area():
    sticky = em.HMM(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]]), np.zeros((2, 2)),
                    np.array([np.eye(2) * 400] * 2))
    switching = em.HMM(np.array([0.5, 0.5]), np.array([[0.1, 0.9], [0.9, 0.1]]), np.zeros((2, 2)),
                       np.array([np.eye(2) * 100] * 2))
    assert em.explorative_index([[sticky, switching]]) == 1
    assert em.explorative_index([[switching, sticky]]) == 0
    assert em.explorative_index([[sticky, switching]], by="area") == 0
    with pytest.raises(ValueError, match="by must be"):
        em.explorative_index([[sticky, switching]], by="size")


def test_loglik_is_the_exact_sequence_likelihood_per_fixation():
    """Against brute-force enumeration of all state paths of a tiny HMM."""
    rng = np.random.default_rng(3)
    h = em.HMM(np.array([0.3, 0.7]), np.array([[0.8, 0.2], [0.4, 0.6]]), np.array([[10.0, 20.0], [60.0, 40.0]]),
               np.array([[[50.0, 5.0], [5.0, 30.0]], [[80.0, -10.0], [-10.0, 60.0]]]))
    seqs = [rng.uniform(0, 70, (4, 2)), rng.uniform(0, 70, (2, 2))]
    for s, ll in zip(seqs, em.loglik(h, seqs)):
        dens = np.exp(em.gaussian_logpdf(s, h.means, h.covs))
        total = sum(h.prior[z[0]] * dens[0, z[0]] * np.prod([h.trans[z[t - 1], z[t]] * dens[t, z[t]] for t in range(1, len(s))])
                    for z in itertools.product(range(2), repeat=len(s)))
        assert ll == pytest.approx(np.log(total) / len(s), rel=1e-12)


def test_roi_count_selection_recovers_known_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[40, 40], [160, 50], [100, 150]])
    problems = []
    for k_true in (1, 3):
        states = rng.integers(0, k_true, (4, 15))
        problems.append([centres[s] + rng.normal(0, 6, (15, 2)) for s in states])
    hmms = em.fit_vbhmms(problems, [[100, 100]] * 2, K_values=(1, 2, 3, 4), opt=em.VBOptions(numtrials=10))
    assert [h.n_rois for h in hmms] == [1, 3]
    assert len(hmms[1].model_LL) == 4 and np.argmax(hmms[1].model_LL) == 2


def test_remove_empty_and_standard_order():
    h = em.HMM(np.array([0.2, 0.0, 0.8]), np.array([[0.1, 0.0, 0.9], [0.3, 0.4, 0.3], [0.7, 0.0, 0.3]]),
               np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 9.0]]), np.array([np.eye(2)] * 3), N=np.array([4.0, 1e-5, 6.0]),
               varpar={"alpha": np.array([1.0, 0.1, 3.0]), "epsilon": np.array([[1.0, 0.1, 2.0]] * 3),
                       "beta": np.ones(3), "v": np.ones(3) * 5, "m": np.zeros((3, 2)), "W": np.array([np.eye(2)] * 3)})
    g = em.remove_empty(h)
    assert g.n_rois == 2 and np.allclose(g.prior, [0.25, 0.75]) and np.allclose(g.trans, [[1 / 3, 2 / 3]] * 2)
    assert list(em.standardize_order(h.prior, h.trans)) == [2, 0, 1]


def test_drop_degenerate_trials():
    assert list(np.isfinite(em.drop_degenerate(np.array([-50.0, -100.0, -101.0])))) == [False, True, True]
    assert np.isfinite(em.drop_degenerate(np.array([-100.0, -101.0, -300.0]))).all()


def test_ef_scale():
    assert em.ef_scale(-100.0, -200.0) == pytest.approx(100 / 300)
    assert em.ef_scale(-200.0, -100.0) == pytest.approx(-100 / 300)
    np.testing.assert_allclose(em.ef_scale(np.array([-1.0, -3.0]), np.array([-3.0, -1.0])), [0.5, -0.5])
    with pytest.raises(ValueError):
        em.ef_scale(0.0, 0.0)


def test_bad_input():
    with pytest.raises(ValueError, match="outside"):
        em.fit_individual([[[np.array([[10.0, 10.0], [150.0, 20.0]])]]], [(100, 100)])
    with pytest.raises(ValueError, match="NaN"):
        em.fit_individual([[[np.array([[10.0, np.nan], [15.0, 20.0]])]]], [(100, 100)])
    with pytest.raises(ValueError, match="no fixations"):
        em.fit_vbhmms([[np.zeros((0, 2))]], [[50, 50]])
    with pytest.raises(ValueError, match="empty"):
        em.loglik(em.HMM(np.ones(1), np.ones((1, 1)), np.zeros((1, 2)), np.eye(2)[None]), [np.zeros((0, 2))])
    with pytest.raises(ValueError, match="groups"):
        em.cocluster([[None]], em.VHEMOptions(n_groups=2))
    with pytest.raises(ValueError, match="at least 2"):
        em.paired_t([1.0], [2.0])
    with pytest.raises(ValueError, match="one label per viewer"):
        em.group_separation(np.zeros((3, 2, 2)), [0, 1], 0)


def test_statistics_against_scipy_and_hand_values():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1, 1, 20), rng.normal(0, 1, 20)
    r = em.paired_t(a, b)
    diff = a - b
    assert r.df == 19 and r.d == pytest.approx(diff.mean() / diff.std(ddof=1))
    assert r.t == pytest.approx(diff.mean() / (diff.std(ddof=1) / np.sqrt(20)))
    z = rng.normal(size=200)
    x = z + rng.normal(size=200)
    y = z + rng.normal(size=200)
    c = np.corrcoef([x, y, z])
    expected = (c[0, 1] - c[0, 2] * c[1, 2]) / np.sqrt((1 - c[0, 2] ** 2) * (1 - c[1, 2] ** 2))
    partial, df, p = em.partial_correlation(x, y, z)
    assert partial == pytest.approx(expected, abs=1e-10) and df == 197
    assert c[0, 1] > 0.3 and abs(partial) < c[0, 1]  # removing the shared covariate weakens it
