"""The VHEM starts (``hemopt.initmode``) of the EMHMM toolbox: each gives a valid model, ``'auto'``
keeps the start with the best bound, the ``'gmmNew'`` family takes its emissions from a GMM of the
pooled viewer emissions. Small synthetic viewer HMMs, no fitting: fast."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from hsi_core import eyemovements as em
from hsi_core.eyemovements import vhem

#: the planted ROI centres of the two viewer groups on each of the two images (x, y)
CENTRES = {0: np.array([[100.0, 100.0], [400.0, 100.0], [250.0, 350.0]]),
           1: np.array([[150.0, 300.0], [450.0, 300.0], [300.0, 60.0]])}
#: group 0 moves left to right (0 -> 1 -> 2), group 1 the other way round
TRANS = {0: np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]]),
         1: np.array([[0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])}


def _viewer(rng, group, image):
    means = CENTRES[image] + rng.normal(0, 15, (3, 2))
    covs = np.array([np.diag(rng.uniform(300, 600, 2)) for _ in range(3)])
    prior = np.array([0.8, 0.1, 0.1]) if group == 0 else np.array([0.1, 0.1, 0.8])
    return em.HMM(prior=prior, trans=TRANS[group], means=means, covs=covs)


@pytest.fixture(scope="module")
def study():
    rng = np.random.default_rng(7)
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    hmms = [[_viewer(rng, g, k) for g in groups] for k in (0, 1)]
    return hmms, groups


def _opt(**kw):
    return em.VHEMOptions(**{"trials": 4, "tau": 5, "seed": 11, **kw})


@pytest.mark.parametrize("mode", [m for m in vhem.INITMODES if m != "auto"])
def test_each_start_gives_valid_starting_and_final_models(study, mode):
    hmms, groups = study
    opt = _opt(initmode=mode)
    S = [3, 3]
    starts, omega = vhem.initial_groups(hmms, S, 2, opt, mode)
    assert omega.shape == (opt.trials, 2) and np.allclose(omega.sum(1), 1) and (omega > 0).all()
    for prior, A, mu, cov in starts:
        assert prior.shape == (opt.trials, 2, 3) and mu.shape == (opt.trials, 2, 3, 2)
        np.testing.assert_allclose(prior.sum(-1), 1, rtol=1e-12)
        np.testing.assert_allclose(A.sum(-1), 1, rtol=1e-12)
        assert np.isfinite(mu).all() and (np.linalg.eigvalsh(cov) > 0).all()
    co = em.cocluster(hmms, opt)
    assert co.initmode == mode and set(co.init_LL) == {mode}
    assert np.isfinite(co.LogL) and sorted(set(co.labels)) == [0, 1]
    for row in co.group_hmms:
        for h in row:
            np.testing.assert_allclose(h.prior.sum(), 1, rtol=1e-10)
            np.testing.assert_allclose(h.trans.sum(1), 1, rtol=1e-10)


def test_starts_recover_well_separated_groups(study):
    hmms, groups = study
    for mode in ("gmmNew", "gmmNew2", "base"):
        assert adjusted_rand_score(groups, em.cocluster(hmms, _opt(initmode=mode)).labels) == 1.0, mode


def test_auto_keeps_the_start_with_the_best_bound_whatever_the_order(study, monkeypatch):
    """'auto' runs each start of AUTO_INITMODES and keeps the best: the same result when the order
    is reversed, and the bound of the best start run on its own (catches keeping the first or
    the last start instead of the best)."""
    hmms, _ = study
    opt = _opt(trials=3)
    alone = {m: em.cocluster(hmms, _opt(trials=3, initmode=m)).LogL for m in vhem.AUTO_INITMODES}
    assert len({round(v, 6) for v in alone.values()}) > 1, "the starts tie here: the test could not tell them apart"
    best = max(alone, key=alone.get)
    for order in (vhem.AUTO_INITMODES, tuple(reversed(vhem.AUTO_INITMODES))):
        monkeypatch.setattr(vhem, "AUTO_INITMODES", order)
        co = em.cocluster(hmms, opt)
        assert co.initmode == best and co.LogL == pytest.approx(alone[best], rel=1e-12)
        assert co.init_LL == pytest.approx(alone, rel=1e-12)
        assert len(co.trial_LL) == 3 * opt.trials


def _expected_loglik(mu, cov, means, covs):
    """E_{N(m_i, C_i)}[log N(x | mu_t, V_t)] for every component t and input Gaussian i."""
    icov = np.linalg.inv(cov)
    d = means[None] - mu[:, None]
    return -0.5 * (np.linalg.slogdet(cov)[1][:, None] + np.einsum("tde,ned->tn", icov, covs)
                   + np.einsum("tnd,tde,tne->tn", d, icov, d))


def test_gmmnew_emissions_are_a_gmm_of_the_pooled_viewer_emissions(study):
    """A 'gmmNew' start's S Gaussians, shared by every group, are a fixed point of hierarchical EM
    on the pooled viewer emissions: with the toolbox's virtual sample count the assignments are
    hard, so each Gaussian is the moment-matched merge of the viewer ROIs it explains best (catches
    random viewers' ROIs, or any Gaussians not fitted to the pooled emissions, as starts)."""
    hmms, _ = study
    for k, row in enumerate(hmms):
        means = np.concatenate([h.means for h in row])
        covs = np.concatenate([h.covs for h in row])
        for t in range(3):
            prior, A, mu, cov = vhem.start_gmm(row, 3, 2, vhem._trial_rng(_opt(), t), separate=False)
            np.testing.assert_array_equal(mu[0], mu[1])  # shared by the groups
            owner = np.argmax(_expected_loglik(mu[0], cov[0], means, covs), 0)
            for c in range(3):
                mine = owner == c
                assert mine.any()
                np.testing.assert_allclose(mu[0, c], means[mine].mean(0), atol=1e-6)
                np.testing.assert_allclose(cov[0, c], covs[mine].mean(0) + np.cov(means[mine].T, bias=True), rtol=1e-6)
            assert not np.allclose(A[0], A[1])  # 'r0': random transitions per group
            # gmmNew2: 2 * 3 Gaussians dealt out, each group gets 3 of them
            _, A2, mu2, _ = vhem.start_gmm(row, 3, 2, vhem._trial_rng(_opt(), t), separate=True)
            assert len(np.unique(np.round(mu2.reshape(-1, 2), 6), axis=0)) == 6
            np.testing.assert_allclose(A2, 1 / 3)  # 'u0': uniform transitions
    # with a random viewer's ROIs instead, the fixed-point check fails
    row = hmms[0]
    means = np.concatenate([h.means for h in row])
    covs = np.concatenate([h.covs for h in row])
    rnd = row[3]
    owner = np.argmax(_expected_loglik(rnd.means, rnd.covs, means, covs), 0)
    assert not all(np.allclose(rnd.means[c], means[owner == c].mean(0), atol=1e-6) for c in range(3))


def test_hem_gmm_single_component_is_the_moment_matched_gaussian():
    rng = np.random.default_rng(0)
    means = rng.normal(0, 50, (5, 2))
    covs = np.array([np.eye(2) * v for v in rng.uniform(10, 20, 5)])
    w, c, v = vhem.hem_gmm(means, covs, 1, 1000.0, 30, rng)
    np.testing.assert_allclose(c[0], means.mean(0))
    np.testing.assert_allclose(v[0], covs.mean(0) + np.cov(means.T, bias=True))


def test_unknown_initmode_is_a_clear_error(study):
    hmms, _ = study
    with pytest.raises(ValueError, match="unknown initmode 'kmeans'"):
        em.cocluster(hmms, _opt(initmode="kmeans"))
