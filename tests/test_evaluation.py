import numpy as np
import pytest
import torch

from hsi_core import datasets, evaluation, losses
from hsi_core.baselines import centre_bias_map


def test_baselines_on_the_demo_world(demo_world):
    records = datasets.salicon_records(demo_world / "salicon/annotations/fixations_train2014.json",
                                       demo_world / "salicon/images/train", limit=6)
    rows = evaluation.baseline_scores(records, max_side=160, n_splits=20)
    by = {name: [r for r in rows if r["baseline"] == name] for name in ("centre bias", "uniform", "one half of the viewers")}
    assert all(len(v) == 6 for v in by.values())
    mean = lambda name, key: np.mean([r[key] for r in by[name]])
    # planted: viewers agree on the objects, so one half predicts the other better than the centre
    assert mean("one half of the viewers", "NSS") > mean("centre bias", "NSS") > 0
    assert mean("uniform", "AUC-Judd") == pytest.approx(0.5)
    assert "CC" not in by["uniform"][0]  # undefined for a flat map: left out, not NaN


def test_score_dataset_ranks_truth_above_noise(demo_world):
    items = datasets.load_hsb(demo_world / "hsb")[:6]
    ds = datasets.SaliencyDataset([it.image_path for it in items],
                                  [lambda it=it: datasets.load_saliency_png(it.saliency_path) for it in items],
                                  [lambda it=it: datasets.load_saliency_png(it.saliency_path) > 0.5 for it in items],
                                  size=(64, 48))
    truth = lambda images: torch.stack([ds[i]["saliency"] for i in range(len(images))])
    rows_truth = evaluation.score_dataset(truth, ds, batch_size=8, n_splits=10)
    rows_centre = evaluation.score_dataset(lambda x: torch.from_numpy(centre_bias_map(64, 48)).expand(len(x), -1, -1), ds, n_splits=10)
    assert np.mean([r["CC"] for r in rows_truth]) > 0.99
    assert np.mean([r["AUC-Judd"] for r in rows_truth]) > np.mean([r["AUC-Judd"] for r in rows_centre])


def test_losses():
    g = torch.rand(2, 8, 8)
    fix = g > 0.8
    p = torch.rand(2, 8, 8, requires_grad=True)
    loss = losses.saliency_loss(p, g, fix)
    loss.backward()
    assert torch.isfinite(p.grad).all()
    # the ground truth itself scores lower (better) than noise
    assert losses.saliency_loss(g, g, fix) < losses.saliency_loss(p.detach(), g, fix)
    assert losses.normalized_l1_loss(g, 3 * g) == pytest.approx(0.0, abs=1e-6)  # invariant to the maximum
    assert 0 < losses.normalized_l1_loss(p.detach(), g) <= 2
