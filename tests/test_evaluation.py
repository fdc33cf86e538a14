import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hsi_core import datasets, evaluation, losses, sources
from hsi_core.datasets import FixationRecord
from hsi_core.fixations import saliency_map

sys.path.insert(0, str(Path(__file__).parent))
import mit_reference as ref  # noqa: E402


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
    # a flat map: scored as pysaliency scores it under the default policy, flagged in its row
    assert all(r["flat"] and r["CC"] == 0.0 and r["NSS"] == 0.0 for r in by["uniform"])
    assert not any(r["flat"] for r in by["centre bias"])


@pytest.mark.parametrize("n_images,max_side", [(2, 48), (30, 48), (120, 64), (40, 160)])
def test_centre_bias_scores_chance_under_the_default_sauc(shared_root, n_images, max_side):
    """Real NUS Scene fixations: the centre prior's shuffled AUC is 0.5 +- 0.05 at any resolution and
    number of images under the default (pysaliency) negatives, and above chance under the MIT ones."""
    fv = sources.free_viewing(shared_root / "nus-scene")
    rows = evaluation.baseline_scores(fv.records[:n_images], max_side=max_side, sauc=("pysaliency", "mit"), n_splits=10)
    centre = [r for r in rows if r["baseline"] == "centre bias"]
    assert len(centre) == n_images
    assert np.mean([r["sAUC"] for r in centre]) == pytest.approx(0.5, abs=0.05)
    assert np.mean([r["AUC-Judd"] for r in centre]) > 0.7  # the prior itself is strong


def _records(n: int = 7, seed: int = 0) -> list[FixationRecord]:
    """Records of different sizes with per-viewer points (x, y), some points repeated."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = (40, 60) if i % 2 else (30, 50)
        viewers = [np.c_[rng.uniform(0, w - 1, 6), rng.uniform(0, h - 1, 6)] for _ in range(3)]
        viewers.append(viewers[0][:2].copy())  # a second viewer on the same spots: multiplicity
        out.append(FixationRecord(f"r{i}", Path(f"/absent/r{i}.jpg"), h, w, viewers=viewers))
    return out


def _brute_force_grid(record: FixationRecord, size: tuple[int, int]) -> np.ndarray:
    """pysaliency's move of a record's fixations onto another grid, point by point."""
    out = np.zeros(size)
    for x, y in np.concatenate(record.viewers):
        col, row = int(np.clip(np.rint(x), 0, record.width - 1)), int(np.clip(np.rint(y), 0, record.height - 1))
        out[row * size[0] // record.height, col * size[1] // record.width] += 1
    return out


def test_fixation_pool_negatives_are_the_other_images_fixations():
    """pysaliency negatives: every other record's fixations, repeats included, moved onto this grid;
    MIT negatives: the union of exactly k other records (never the image itself), seeded."""
    records = _records()
    pool = evaluation.FixationPool.from_records(records)
    size = (24, 32)
    grids = [_brute_force_grid(r, size) for r in records]
    for i in range(len(records)):
        expected = sum(g for j, g in enumerate(grids) if j != i)
        np.testing.assert_array_equal(pool.negatives(i, size), expected)
        np.testing.assert_array_equal(pool.counts(i, size), grids[i])
        others = pool.other_images(i, 3, seed=4)
        assert len(set(others.tolist())) == 3 and i not in others
        np.testing.assert_array_equal(pool.negatives(i, size, "mit", k_other=3, seed=4),
                                      sum(grids[j] for j in others) > 0)
    assert not np.array_equal(pool.other_images(0, 3, seed=4), pool.other_images(0, 3, seed=5)) or \
        not np.array_equal(pool.other_images(1, 3, seed=4), pool.other_images(1, 3, seed=5))


def test_streamed_rows_are_each_images_own_scores(tmp_path):
    """Each streamed row (uneven batches) equals the metrics of that image's prediction against that
    image's fixations, with the other images' fixations as negatives (pysaliency's pair counting) —
    catches rows shifted between images, batches mixed up, or an image's own fixations among its
    negatives. The predictor derives each map from its input image, so order matters."""
    rng = np.random.default_rng(1)
    size = (16, 20)
    items = []
    for i in range(7):
        counts = np.zeros(size)
        np.add.at(counts, (rng.integers(0, 16, 9), rng.integers(0, 20, 9)), 1)
        items.append({"image": torch.rand(3, *size, generator=torch.Generator().manual_seed(i)),
                      "saliency": saliency_map(torch.from_numpy(counts > 0).float(), 2.0), "fixations": torch.from_numpy(counts > 0),
                      "fixation_counts": torch.from_numpy(counts).float(), "index": i})
    predict = lambda x: x.mean(1) ** 2
    rows = evaluation.evaluate(predict, items, batch_size=3, sauc=("pysaliency", "mit"), n_splits=5)
    assert [r["index"] for r in rows] == list(range(7))
    for i, row in enumerate(rows):
        p = predict(items[i]["image"][None])[0].double().numpy()
        counts = items[i]["fixation_counts"].numpy()
        assert row["CC"] == pytest.approx(ref.cc(p, items[i]["saliency"].double().numpy()), abs=1e-9)
        assert row["AUC-Judd"] == pytest.approx(ref.auc_judd(p, counts > 0), abs=1e-9)
        fr, fc = np.nonzero(counts)
        fr, fc = np.repeat(fr, counts[fr, fc].astype(int)), np.repeat(fc, counts[fr, fc].astype(int))
        other = sum(it["fixation_counts"].numpy() for j, it in enumerate(items) if j != i)
        orow, ocol = np.nonzero(other)
        reps = other[orow, ocol].astype(int)
        expected = ref.auc_shuffled_pysaliency(p, fr, fc, np.repeat(orow, reps), np.repeat(ocol, reps))
        assert row["sAUC"] == pytest.approx(expected, abs=1e-12)
        assert 0 <= row["sAUC (mit)"] <= 1


@pytest.mark.gpu_check
def test_score_to_csv_streams_rows_atomically(demo_world, tmp_path, device):
    """Scoring a RecordSet through the DataLoader on ``device`` writes one CSV row per image with
    the same values as the in-memory rows; a predictor failing mid-way leaves no file behind."""
    fv = sources.free_viewing("demo", demo_root=demo_world)
    dataset = evaluation.RecordSet(fv.records[:9], (24, 32))
    centre = lambda x: torch.from_numpy(evaluation.centre_bias_map(24, 32)).to(x.device).expand(len(x), -1, -1)
    path = tmp_path / "scores.csv"
    means = evaluation.score_to_csv(centre, dataset, path, batch_size=4, device=device)
    with open(path) as handle:
        written = list(csv.DictReader(handle))
    rows = evaluation.evaluate(centre, dataset, batch_size=4)
    assert len(written) == 9 == means["images"]
    for w, r in zip(written, rows):
        assert float(w["sAUC"]) == pytest.approx(r["sAUC"], abs=1e-9)
        assert float(w["CC"]) == pytest.approx(r["CC"], abs=1e-9)
    assert means["sAUC"] == pytest.approx(np.mean([r["sAUC"] for r in rows]))
    calls = iter(range(100))

    def fails_late(x):
        if next(calls) == 1:
            raise RuntimeError("predictor crashed")
        return centre(x)

    with pytest.raises(RuntimeError):
        evaluation.score_to_csv(fails_late, dataset, tmp_path / "partial.csv", batch_size=4)
    assert list(tmp_path.glob("*partial*")) == []


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
