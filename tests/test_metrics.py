"""The batched metrics agree with the MIT benchmark code (ported in tests/mit_reference.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import loadmat

from hsi_core import metrics
from hsi_core.fixations import fixation_map, saliency_map
from hsi_core.io import read_image
from hsi_core.paths import shared_data_root

sys.path.insert(0, str(Path(__file__).parent))
import mit_reference as ref  # noqa: E402


def _random_case(rng: np.random.Generator, h: int = 30, w: int = 40, n_fix: int = 25):
    pred = rng.random((h, w)) ** 3
    gt_fix = np.zeros((h, w), bool)
    gt_fix[rng.integers(0, h, n_fix), rng.integers(0, w, n_fix)] = True
    other = np.zeros((h, w), bool)
    other[rng.integers(0, h, 3 * n_fix), rng.integers(0, w, 3 * n_fix)] = True
    gt = saliency_map(gt_fix, sigma=3.0)
    return pred, gt, gt_fix, other


@pytest.fixture(scope="module")
def real_case():
    """MIT1003 i210: image, its real fixation-location map, its fixation density map, at 1/4 size."""
    root = shared_data_root()
    if root is None:
        pytest.skip("../shared/data is absent")
    demo = root / "mit1003-subset" / "demo"
    fix = loadmat(demo / "FIXATIONLOCS" / "i210.mat")["fixations"] > 0
    density = read_image(demo / "FIXATIONMAPS" / "i210.jpg")[..., 0].astype(np.float64)
    image = read_image(demo / "ALLSTIMULI" / "i210.jpg").astype(np.float64).mean(2)
    # a simple prediction: a blurred intensity map
    pred = saliency_map(image > image.mean(), sigma=15.0).astype(np.float64)
    # distinct values, as MIT's AUC-Judd assumes (it jitters the map to get them)
    pred += np.arange(pred.size).reshape(pred.shape) * 1e-12
    other = np.roll(fix, (80, 150), axis=(0, 1))
    return pred, density, fix, other


def test_against_mit_reference_on_constructed_maps():
    rng = np.random.default_rng(0)
    for _ in range(5):
        pred, gt, fix, other = _random_case(rng)
        assert metrics.cc(pred, gt) == pytest.approx(ref.cc(pred, gt), abs=1e-6)
        assert metrics.kl_div(pred, gt) == pytest.approx(ref.kldiv(pred, gt), abs=1e-6)
        assert metrics.sim(pred, gt) == pytest.approx(ref.similarity(pred, gt), abs=1e-6)
        assert metrics.nss(pred, fix) == pytest.approx(ref.nss(pred, fix), abs=1e-9)  # MATLAB std: ddof=1
        assert metrics.auc_judd(pred, fix) == pytest.approx(ref.auc_judd(pred, fix), abs=1e-6)
        assert metrics.auc_shuffled(pred, fix, other, n_splits=0) == pytest.approx(
            ref.auc_exact(pred, fix, other), abs=1e-6
        )
        assert metrics.mae(pred, gt) == pytest.approx(ref.mae(pred, gt), abs=1e-6)


def test_against_mit_reference_on_real_fixations(real_case):
    pred, density, fix, other = real_case
    assert fix.sum() > 100
    assert metrics.cc(pred, density) == pytest.approx(ref.cc(pred, density), abs=1e-6)
    assert metrics.kl_div(pred, density) == pytest.approx(ref.kldiv(pred, density), abs=1e-6)
    assert metrics.sim(pred, density) == pytest.approx(ref.similarity(pred, density), abs=1e-6)
    assert metrics.nss(pred, fix) == pytest.approx(ref.nss(pred, fix), abs=1e-9)  # MATLAB std: ddof=1
    assert metrics.auc_judd(pred, fix) == pytest.approx(ref.auc_judd(pred, fix), abs=1e-6)
    assert metrics.auc_shuffled(pred, fix, other, n_splits=0) == pytest.approx(
        ref.auc_exact(pred, fix, other), abs=1e-6
    )
    assert metrics.mae(pred, density) == pytest.approx(ref.mae(pred, density), abs=1e-6)


def test_sklearn_agrees_on_exact_auc(real_case):
    from sklearn.metrics import roc_auc_score

    pred, _, fix, other = real_case
    pos = pred[fix]
    neg = pred[other]
    expected = roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])
    assert metrics.auc_shuffled(pred, fix, other, n_splits=0) == pytest.approx(expected, abs=1e-9)


def test_mit_style_sauc_matches_reference_given_same_draws():
    rng = np.random.default_rng(1)
    pred, _, fix, other = _random_case(rng)
    n_splits, seed = 7, 3
    m = int(other.sum())
    keys = torch.rand((n_splits, m), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    draws = [np.argsort(k.numpy(), kind="stable") for k in keys]
    ours = metrics.auc_shuffled(pred, fix, other, n_splits=n_splits, seed=seed, convention="mit")
    assert ours == pytest.approx(ref.auc_shuffled(pred, fix, other, draws), abs=1e-6)


def test_auc_judd_jitter_matches_the_mit_default():
    """On a heavily tied (8-level) map, jitter on equals the MIT code with the same noise, jitter off
    equals the code's ``jitter = 0`` on distinct values, and the two readings differ."""
    rng = np.random.default_rng(5)
    pred, _, fix, _ = _random_case(rng)
    tied = np.round(pred * 7) / 7
    noise = np.random.default_rng(11).random(tied.shape) / 1e7
    on = metrics.auc_judd(tied, fix, jitter=True, seed=11)
    assert on == pytest.approx(ref.auc_judd(tied, fix, jitter=noise), abs=1e-9)
    off = metrics.auc_judd(tied, fix)
    assert abs(on - off) > 1e-3  # ties: the jitter changes the score, so the tables must say which
    assert metrics.auc_judd(tied, fix, jitter=True, seed=12) != on  # seeded: another seed, another draw
    distinct = pred + np.arange(pred.size).reshape(pred.shape) * 1e-9
    assert metrics.auc_judd(distinct, fix) == pytest.approx(ref.auc_judd(distinct, fix), abs=1e-9)


def test_pysaliency_sauc_weights_negatives_by_multiplicity():
    """The default convention counts each other-image fixation (repeats included) and each positive
    fixation, as pysaliency's pair counting does; a binarised pool gives a different score."""
    rng = np.random.default_rng(6)
    pred = np.round(rng.random((20, 30)) * 20) / 20  # ties too
    fr, fc = rng.integers(0, 20, 15), rng.integers(0, 30, 15)
    orows = np.r_[rng.integers(0, 20, 60), np.full(30, 10)]  # a hot spot fixated 30 times
    ocols = np.r_[rng.integers(0, 30, 60), np.full(30, 15)]
    fix_counts = np.zeros((20, 30))
    np.add.at(fix_counts, (fr, fc), 1)
    other_counts = np.zeros((20, 30))
    np.add.at(other_counts, (orows, ocols), 1)
    expected = ref.auc_shuffled_pysaliency(pred, fr, fc, orows, ocols)
    assert metrics.auc_shuffled(pred, fix_counts, other_counts) == pytest.approx(expected, abs=1e-12)
    assert abs(metrics.auc_shuffled(pred, fix_counts, other_counts > 0) - expected) > 1e-3
    with pytest.raises(ValueError, match="convention"):
        metrics.auc_shuffled(pred, fix_counts, other_counts, convention="borji")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("jitter", [False, True])
@pytest.mark.parametrize("convention", ["mit", "pysaliency"])
def test_metric_set_equals_the_single_metrics(backend, jitter, convention):
    """Both kernels of the whole-set function give the single metrics' values (which the tests above
    tie to the MIT code, and tests/test_pysaliency_reference.py to pysaliency), map by map, under
    either convention; a constant map is scored as pysaliency scores it by default and is NaN only
    under ``undefined="skip"``; an image without fixations is NaN for the fixation metrics only."""
    rng = np.random.default_rng(7)
    cases = [_random_case(rng) for _ in range(5)]
    pred = np.stack([c[0] for c in cases])
    pred[1] = np.round(pred[1] * 5) / 5
    pred[3] = 0.25  # constant
    gt = np.stack([c[1] for c in cases])
    fix = np.stack([c[2] for c in cases]).astype(np.float64)
    fix[0, 1, 1] += 2  # a pixel fixated three times
    fix[2, 3, 4] += 4
    fix[4] = 0  # an image without fixations (its ground truth kept, to isolate the fixation metrics)
    neg = rng.integers(0, 3, fix.shape).astype(np.float64)
    conv = dict(nss_convention=convention, judd_convention=convention, sim_convention=convention)
    out = metrics.metric_set(pred, gt, fix, neg, judd_jitter=jitter, seeds=[9] * 5, backend=backend, **conv)
    for i in range(4):
        p, g, f, o = pred[i], gt[i], fix[i], neg[i]
        single = {"CC": metrics.cc(p, g, undefined="pysaliency"), "KL": metrics.kl_div(p, g),
                  "SIM": metrics.sim(p, g, convention=convention, undefined="pysaliency"),
                  "NSS": metrics.nss(p, f, convention=convention, undefined="pysaliency"),
                  "AUC-Judd": metrics.auc_judd(p, f, jitter=jitter, seed=9, convention=convention),
                  "sAUC": metrics.auc_shuffled(p, f, o)}
        if i != 3:
            single["MAE"] = metrics.mae(p, g)
        for name, value in single.items():
            assert out[name][i] == pytest.approx(value, abs=1e-9), (name, i)
    assert out["CC"][3] == 0.0 and out["NSS"][3] == 0.0 and np.isnan(out["MAE"][3])
    g3 = gt[3].astype(np.float64) - (gt[3].min() if convention == "mit" else 0.0)
    assert out["SIM"][3] == pytest.approx(np.minimum(1 / g3.size, g3 / g3.sum()).sum(), abs=1e-12)  # uniform
    if jitter:  # MIT's noise on a flat map: the reference with the same noise, not "about 0.5"
        noise = np.random.default_rng(9).random(pred[3].shape) / 1e7
        assert convention == "pysaliency" or out["AUC-Judd"][3] == pytest.approx(
            ref.auc_judd(pred[3], fix[3], jitter=noise), abs=1e-9)
    else:
        assert out["AUC-Judd"][3] == pytest.approx(0.5, abs=1e-12)
    assert out["sAUC"][3] == pytest.approx(0.5, abs=1e-12) and np.isfinite(out["KL"][3])
    assert np.isnan([out[k][4] for k in metrics.FIXATION_METRICS]).all()
    assert np.isfinite([out[k][4] for k in ("CC", "KL", "SIM", "MAE")]).all()
    skipped = metrics.metric_set(pred, gt, fix, neg, backend=backend, undefined="skip", **conv)
    assert np.isnan([skipped[k][3] for k in ("CC", "NSS", "MAE")]).all()
    assert np.isnan(skipped["SIM"][3]) == (convention == "mit")
    assert skipped["CC"][0] == out["CC"][0]
    with pytest.raises(ValueError, match="undefined"):
        metrics.metric_set(pred, gt, fix, backend=backend, undefined="zero")


def test_batch_equals_single_and_keeps_the_input_kind():
    rng = np.random.default_rng(2)
    cases = [_random_case(rng) for _ in range(4)]
    pred = np.stack([c[0] for c in cases])
    gt = np.stack([c[1] for c in cases])
    fix = np.stack([c[2] for c in cases])
    other = np.stack([c[3] for c in cases])
    batched = {
        "cc": metrics.cc(pred, gt),
        "kl": metrics.kl_div(pred, gt),
        "sim": metrics.sim(pred, gt),
        "nss": metrics.nss(pred, fix),
        "judd": metrics.auc_judd(pred, fix),
        "sauc": metrics.auc_shuffled(pred, fix, other, n_splits=5, convention="mit"),
        "mae": metrics.mae(pred, gt),
    }
    for i, (p, g, f, o) in enumerate(cases):
        assert batched["cc"][i] == pytest.approx(metrics.cc(p, g), abs=1e-12)
        assert batched["kl"][i] == pytest.approx(metrics.kl_div(p, g), abs=1e-12)
        assert batched["sim"][i] == pytest.approx(metrics.sim(p, g), abs=1e-12)
        assert batched["nss"][i] == pytest.approx(metrics.nss(p, f), abs=1e-12)
        assert batched["judd"][i] == pytest.approx(metrics.auc_judd(p, f), abs=1e-12)
        assert batched["sauc"][i] == pytest.approx(metrics.auc_shuffled(p, f, o, n_splits=5, convention="mit"), abs=1e-12)
        assert batched["mae"][i] == pytest.approx(metrics.mae(p, g), abs=1e-12)
    assert isinstance(batched["cc"], np.ndarray) and batched["cc"].shape == (4,)
    as_torch = metrics.cc(torch.from_numpy(pred), torch.from_numpy(gt))
    assert isinstance(as_torch, torch.Tensor) and as_torch.shape == (4,)
    assert isinstance(metrics.cc(pred[0], gt[0]), float)


def test_known_values():
    gt = np.zeros((10, 10))
    gt[2:5, 2:5] = 1.0
    gt[0, 0] = 0.5
    fix = gt > 0.9
    assert metrics.cc(gt, gt) == pytest.approx(1.0)
    assert metrics.cc(-gt, gt) == pytest.approx(-1.0)
    assert metrics.kl_div(gt, gt) == pytest.approx(0.0, abs=1e-12)
    assert metrics.sim(gt, gt) == pytest.approx(1.0)
    assert metrics.mae(gt, gt) == pytest.approx(0.0)
    graded = gt + np.arange(100).reshape(10, 10) * 1e-4  # distinct values: no ties among fixated pixels
    assert metrics.auc_judd(graded, fix) == pytest.approx(1.0)
    assert metrics.auc_judd(gt, fix) == pytest.approx(1.0)  # tied fixated values count together
    assert metrics.auc_judd(-graded, fix) < 0.1
    # a constant prediction scores chance under both AUCs, and KL of the uniform map is defined
    assert metrics.auc_judd(np.ones((10, 10)), fix) == pytest.approx(0.5)
    assert metrics.auc_shuffled(np.ones((10, 10)), fix, ~fix, n_splits=0) == pytest.approx(0.5)
    assert metrics.kl_div(np.ones((10, 10)), gt) > 0


def test_kl_shifts_negative_maps():
    rng = np.random.default_rng(3)
    pred, gt, _, _ = _random_case(rng)
    assert metrics.kl_div(pred - 0.5, gt) == pytest.approx(ref.kldiv(pred - (pred - 0.5).min() - 0.5, gt), abs=1e-6)


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.cc(np.ones((5, 5)), np.random.rand(5, 5)),
        lambda: metrics.nss(np.full((5, 5), 2.0), np.eye(5)),
        lambda: metrics.sim(np.random.rand(5, 5), np.zeros((5, 5))),
        lambda: metrics.mae(np.zeros((5, 5)), np.random.rand(5, 5)),
        lambda: metrics.nss(np.random.rand(5, 5), np.zeros((5, 5))),
        lambda: metrics.auc_judd(np.random.rand(5, 5), np.zeros((5, 5))),
        lambda: metrics.auc_shuffled(np.random.rand(5, 5), np.eye(5), np.zeros((5, 5))),
        lambda: metrics.cc(np.random.rand(5, 5), np.random.rand(5, 6)),
        lambda: metrics.cc(np.array([[np.nan, 1.0], [0.0, 2.0]]), np.random.rand(2, 2)),
        lambda: metrics.kl_div(np.zeros((4, 4)), np.random.rand(4, 4)),
        lambda: metrics.cc(np.random.rand(2, 3, 4, 5), np.random.rand(2, 3, 4, 5)),
        lambda: metrics.auc_judd(np.random.rand(3, 3), -np.eye(3)),
        lambda: metrics.auc_shuffled(np.random.rand(5, 5), np.eye(5), np.ones((5, 5)), n_splits=0, convention="mit"),
        lambda: metrics.metric_set(np.random.rand(2, 5, 5), np.random.rand(2, 5, 5), np.ones((2, 5, 5)),
                                   backend="cupy"),
    ],
)
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()


def test_torch_kernels_are_differentiable_and_match():
    rng = np.random.default_rng(4)
    pred, gt, fix, _ = _random_case(rng)
    p = torch.tensor(pred[None], requires_grad=True)
    g = torch.tensor(gt[None], dtype=torch.float64)
    f = torch.tensor(fix[None])
    loss = metrics.torch_kl_div(p, g).sum() - metrics.torch_cc(p, g).sum() - metrics.torch_nss(p, f).sum()
    loss.backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert metrics.torch_cc(p, g).item() == pytest.approx(metrics.cc(pred, gt), abs=1e-9)
    assert metrics.torch_nss(p, f).item() == pytest.approx(metrics.nss(pred, fix), abs=1e-9)
    assert metrics.torch_sim(p, g).item() == pytest.approx(metrics.sim(pred, gt), abs=1e-9)
