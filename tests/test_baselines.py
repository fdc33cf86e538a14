"""Classical baselines: centre prior, Itti-Koch-Niebur, spectral residual."""

import numpy as np
import pytest
import torch

from hsi_core import baselines, evaluation, paper
from hsi_core.experiments import saliency_models


def _popout(seed: int = 0) -> tuple[torch.Tensor, slice, slice]:
    """Grey noisy scenes with one red patch at a different place in each image."""
    g = torch.Generator().manual_seed(seed)
    x = 0.5 + 0.03 * torch.randn(3, 3, 96, 128, generator=g)
    places = [(slice(60, 72), slice(20, 36)), (slice(10, 22), slice(90, 106)), (slice(40, 52), slice(56, 72))]
    for i, (r, c) in enumerate(places):
        x[i, :, r, c] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]
    return x.clamp(0, 1), places


def test_centre_bias_map():
    m = baselines.centre_bias_map(48, 64)
    assert m.shape == (48, 64) and m.dtype == np.float32
    assert np.unravel_index(m.argmax(), m.shape) in {(23, 31), (23, 32), (24, 31), (24, 32)}
    assert m[0, 0] < 0.05 and m.max() <= 1
    np.testing.assert_allclose(m, m[::-1, ::-1], atol=1e-6)  # symmetric
    with pytest.raises(ValueError):
        baselines.centre_bias_map(0, 5)
    assert (baselines.uniform_map(3, 4) == 1).all()


@pytest.mark.parametrize("model", [baselines.itti_koch, baselines.spectral_residual])
def test_pop_out_is_found(model):
    images, places = _popout()
    maps = model(images)
    assert maps.shape == (3, 96, 128)
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    for i, (r, c) in enumerate(places):
        inside = maps[i, r, c].mean()
        assert inside > 3 * maps[i].mean(), (model.__name__, i, float(inside), float(maps[i].mean()))
        # the maximum lies on or next to the patch
        y, x = divmod(int(maps[i].argmax()), 128)
        assert r.start - 8 <= y < r.stop + 8 and c.start - 8 <= x < c.stop + 8


def test_itti_normalisation_promotes_single_peak():
    one = torch.zeros(1, 32, 32)
    one[0, 10, 10] = 1.0
    many = one.clone()
    many[0, 20, 25] = many[0, 5, 28] = many[0, 28, 3] = 0.9
    n_one, n_many = baselines.itti_normalise(one), baselines.itti_normalise(many)
    assert n_one.max() == pytest.approx(1.0)
    assert n_many.max() < 0.05  # many equal peaks: suppressed by (1 - 0.9)^2


def test_bad_input():
    with pytest.raises(ValueError, match="expected images"):
        baselines.itti_koch(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="NaN"):
        baselines.spectral_residual(torch.full((1, 3, 32, 32), float("nan")))


def test_classical_models_on_real_fixations(shared_root):
    """On real NUS Scene images, both models beat chance (AUC-Judd > 0.5) against human fixations."""
    from hsi_core import datasets

    root = shared_root / "nus-scene"
    records = datasets.scanpath_records(root / "tidy/fixations.mat", datasets.nus_scene_stimuli(root), limit=24)
    items = evaluation.load_items(records, (96, 128))
    for model in (baselines.itti_koch, baselines.spectral_residual):
        rows = evaluation.evaluate(model, items, n_splits=10)
        auc = np.mean([r["AUC-Judd"] for r in rows])
        assert 0.55 < auc < 1.0, (model.__name__, auc)


# ----------------------------------------------------------------------------- dataset-level scoring
def _items(n: int = 5, size=(24, 32)) -> list[dict]:
    g = torch.Generator().manual_seed(3)
    items = []
    for i in range(n):
        fix = torch.zeros(size, dtype=torch.bool)
        fix[torch.randint(0, size[0], (6,), generator=g), torch.randint(0, size[1], (6,), generator=g)] = True
        from hsi_core.fixations import saliency_map

        items.append({"image": torch.rand(3, *size, generator=g), "saliency": saliency_map(fix.float(), 2.0),
                      "fixations": fix, "index": i})
    return items


def test_evaluate_rows_are_the_mit_reference_scores_of_each_image():
    """Each row of ``evaluate`` (uneven batches) equals the MIT reference (tests/mit_reference.py) of
    that image's prediction against that image's maps, and ``mean_table`` is their plain mean with
    full coverage. Catches rows shifted between images or batches (the predictor is a function of
    the input image, so order matters), a biased NSS std, and a mean over the wrong rows."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import mit_reference as ref

    items = _items()
    predict = lambda x: x.mean(1) ** 3  # noqa: E731
    rows = evaluation.evaluate(predict, items, batch_size=2, n_splits=10)
    assert [r["index"] for r in rows] == list(range(5))
    for item, row in zip(items, rows):
        p = predict(item["image"][None])[0].double().numpy()
        g, f = item["saliency"].double().numpy(), item["fixations"].numpy()
        assert row["CC"] == pytest.approx(ref.cc(p, g), abs=1e-9)
        assert row["SIM"] == pytest.approx(ref.similarity(p, g), abs=1e-9)
        assert row["KL"] == pytest.approx(ref.kldiv(p, g), abs=1e-9)
        assert row["NSS"] == pytest.approx(ref.nss(p, f), abs=1e-9)
        assert row["AUC-Judd"] == pytest.approx(ref.auc_judd(p, f), abs=1e-9)
        assert row["fixations"] == f.sum() and row["flat"] is False
    table = evaluation.mean_table({"cube": rows})
    for metric in evaluation.TABLE_METRICS:
        assert table.loc["cube", metric] == pytest.approx(np.mean([r[metric] for r in rows]), abs=1e-12)
        assert table.loc["cube", f"n_{metric}"] == 5
    assert table.loc["cube", "flat maps"] == 0


def test_evaluate_rejects_bad_predictions():
    items = _items(3)
    with pytest.raises(ValueError, match="NaN"):
        evaluation.evaluate(lambda x: torch.full((len(x), 24, 32), float("nan")), items)
    with pytest.raises(ValueError, match="expected"):
        evaluation.evaluate(lambda x: torch.rand(len(x), 10, 10), items)
    with pytest.raises(ValueError, match="empty"):
        evaluation.evaluate(baselines.centre_bias, [])
    # a constant map: scored as pysaliency does by default (CC 0, NSS 0), left out under "skip";
    # flagged either way; AUC-Judd is chance
    flat = lambda x: torch.ones(len(x), 24, 32)  # noqa: E731
    rows = evaluation.evaluate(flat, items, n_splits=5)
    assert rows[0]["flat"] and rows[0]["CC"] == 0.0 and rows[0]["NSS"] == 0.0
    assert rows[0]["AUC-Judd"] == pytest.approx(0.5)
    skipped = evaluation.evaluate(flat, items, n_splits=5, undefined="skip")
    assert skipped[0]["flat"] and "CC" not in skipped[0] and "NSS" not in skipped[0]
    with pytest.raises(ValueError, match="undefined"):
        evaluation.evaluate(flat, items, undefined="drop")


def test_inference_time_is_the_median_per_image_after_warm_up():
    """A fake model of known cost: 0.4 s on its first call (the warm-up), 10 ms on each later one,
    whatever the batch. Per image, on a batch of 8, that is 1.25 ms: a timer that forgets to divide
    by the batch (10 ms) or counts the warm-up (0.4 s) is caught."""
    import time

    calls = []

    def predict(x):
        calls.append(len(x))
        time.sleep(0.4 if len(calls) == 1 else 0.01)

    t = evaluation.inference_time(predict, torch.rand(8, 3, 8, 8), repeats=1, warmup=1)
    assert calls == [8, 8]
    assert 0.00125 <= t < 0.008
    with pytest.raises(ValueError):
        evaluation.inference_time(baselines.centre_bias, torch.rand(1, 3, 8, 8), repeats=0)


def test_count_parameters_counts_parameters_not_buffers():
    from torch import nn

    # 3*4*3*3 weights + 4 biases (conv) + 4 + 4 (BatchNorm's affine); its running mean/var are buffers
    assert evaluation.count_parameters(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))) == 120
    assert evaluation.count_parameters(baselines.itti_koch) == 0  # a parameter-free model


def test_paper_tables():
    t = saliency_models.paper_table("SALICON val")
    assert t.loc["CMRNet", "CC"] == 0.846 and t.loc["UNISAL", "AUC-Judd"] == 0.897
    assert set(paper.LOGGABOR_TABLES_I_III) == {"SALICON val", "MIT1003", "MIT300"}
    with pytest.raises(ValueError, match="unknown dataset"):
        saliency_models.paper_table("CAT2000")


def test_missing_image_raises(tmp_path):
    from hsi_core.datasets import FixationRecord

    record = FixationRecord("x", tmp_path / "absent.jpg", 10, 10, viewers=[np.array([[1.0, 2.0]])])
    with pytest.raises(FileNotFoundError, match="absent.jpg"):
        evaluation.load_items([record], (8, 8))


def test_mit1003_subset_items(shared_root):
    from hsi_core import datasets

    items, stand_ins = saliency_models.stimulus_items(datasets.load_mit1003(shared_root / "mit1003-subset")[:4], (24, 32))
    assert len(items) == 4 and stand_ins == 4  # the subset has density maps only
    real, none = saliency_models.stimulus_items(datasets.load_mit1003(shared_root / "mit1003-subset/demo"), (48, 64))
    assert none == 0 and real[0]["fixations"].sum() > 50
