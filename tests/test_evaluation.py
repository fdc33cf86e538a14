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
    number of images under the default (pysaliency) negatives. Under the MIT ones (10 other images'
    fixated locations, each once) it is higher whenever there are 10 other images: binarising folds
    the many fixations near the centre into few locations, so the negatives spread wider than the
    fixations do; the more, the coarser the grid (measured: +0.06 at 48 px, +0.04 at 64 px, +0.007
    at 160 px). Catches the negatives' multiplicity lost in the default, or the MIT union counted
    with multiplicity (then the two would agree)."""
    fv = sources.free_viewing(shared_root / "nus-scene")
    rows = evaluation.baseline_scores(fv.records[:n_images], max_side=max_side, sauc=("pysaliency", "mit"), n_splits=10)
    centre = [r for r in rows if r["baseline"] == "centre bias"]
    assert len(centre) == n_images
    default, mit = np.mean([r["sAUC"] for r in centre]), np.mean([r["sAUC (mit)"] for r in centre])
    assert default == pytest.approx(0.5, abs=0.05)
    assert np.mean([r["AUC-Judd"] for r in centre]) > 0.7  # the prior itself is strong
    if n_images > evaluation.MIT_K_OTHER:
        assert mit > default
        if max_side <= 64:
            assert mit > default + 0.02


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
    for i in range(13):  # more than MIT_K_OTHER + 1, so K = 10 differs from "all the others"
        counts = np.zeros(size)
        np.add.at(counts, (rng.integers(0, 16, 9), rng.integers(0, 20, 9)), 1)
        items.append({"image": torch.rand(3, *size, generator=torch.Generator().manual_seed(i)),
                      "saliency": saliency_map(torch.from_numpy(counts > 0).float(), 2.0), "fixations": torch.from_numpy(counts > 0),
                      "fixation_counts": torch.from_numpy(counts).float(), "index": i})
    predict = lambda x: x.mean(1) ** 2
    rows = evaluation.evaluate(predict, items, batch_size=3, sauc=("pysaliency", "mit"), n_splits=5)
    pool = evaluation.FixationPool.from_dataset(items)
    assert [r["index"] for r in rows] == list(range(13))
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
        # MIT: the union of MIT_K_OTHER = 10 other images' fixated locations, n_splits draws from a
        # generator seeded with seed, as AUC_shuffled.m (tests/mit_reference.py) with the same draws
        others = pool.other_images(i, 10, seed=0)
        assert len(others) == 10 and i not in others
        union = sum(items[j]["fixation_counts"].numpy() for j in others) > 0
        keys = torch.rand((5, int(union.sum())), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        draws = [np.argsort(k.numpy(), kind="stable") for k in keys]
        assert row["sAUC (mit)"] == pytest.approx(ref.auc_shuffled(p, counts > 0, union, draws), abs=1e-9)


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
    # CMRNet's loss (LG Eq. 11-12) computed independently (float32 sums of 64 values: 1e-6), and its maximum 2
    # reached by maps with disjoint supports
    pd, gd = p.detach().double().flatten(1), g.double().flatten(1)
    expected = (pd / pd.sum(1, keepdim=True) - gd / gd.sum(1, keepdim=True)).abs().sum(1).mean()
    assert float(losses.normalized_l1_loss(p.detach(), g)) == pytest.approx(float(expected), abs=1e-6)
    a, b = torch.zeros(1, 4, 4), torch.zeros(1, 4, 4)
    a[0, 0, 0], b[0, 3, 3] = 1.0, 5.0
    assert float(losses.normalized_l1_loss(a, b)) == pytest.approx(2.0, abs=1e-6)


# ----------------------------------------------------------------------------- defaults that pin the references
def test_every_scorer_defaults_to_pysaliency_sauc_and_borjis_k():
    """The default sAUC negatives of every scorer are pysaliency's, and the MIT reading draws
    Borji's 10 other images (MIT ``AUC_shuffled.m`` as the benchmark runs it). Catches
    ``MIT_K_OTHER`` 10 -> 3, or a scorer's ``sauc`` default switched to ``"mit"``."""
    import inspect

    assert evaluation.MIT_K_OTHER == 10
    for scorer in (evaluation.score_maps, evaluation.iter_scores, evaluation.baseline_scores):
        params = inspect.signature(scorer).parameters
        assert params["sauc"].default == "pysaliency", scorer.__name__
        assert params["k_other"].default == 10, scorer.__name__
        assert params["undefined"].default == "pysaliency", scorer.__name__
        for switch in ("nss_convention", "judd_convention", "sim_convention"):
            assert params[switch].default == "mit", (scorer.__name__, switch)
    assert inspect.signature(evaluation.FixationPool.negatives).parameters["k_other"].default == 10
    assert inspect.signature(evaluation.summarize).parameters["dataset_mean"].default == "image"


# ----------------------------------------------------------------------------- undefined is counted
def _grid_items(n: int, size=(16, 20), empty=()) -> list[dict]:
    rng = np.random.default_rng(3)
    items = []
    for i in range(n):
        counts = np.zeros(size)
        if i not in empty:
            np.add.at(counts, (rng.integers(0, size[0], 8), rng.integers(0, size[1], 8)), 1)
        fix = torch.from_numpy(counts > 0)
        sal = saliency_map(fix.float(), 2.0) if fix.any() else torch.zeros(size)
        items.append({"image": torch.rand(3, *size, generator=torch.Generator().manual_seed(i)), "saliency": sal,
                      "fixations": fix, "fixation_counts": torch.from_numpy(counts).float(), "index": i})
    return items


def _half_flat(x):
    """A predictor that collapses on every second map of a batch (flat), else the image's brightness."""
    out = x.mean(1) ** 2
    out[::2] = 0.3
    return out


def test_flat_maps_for_half_the_images_are_reported_per_metric(tmp_path):
    """The issue's case: flat maps for every second image. Default policy: scored as pysaliency
    (CC 0), every mean over all images, '6 of 12 maps flat' said; "skip": the CC mean covers only
    the other 6 and says so (n_CC = 6) in mean_table, summarize and score_to_csv alike. Catches a
    flat map silently dropped from a mean that claims all images."""
    items = _grid_items(12)
    scored = evaluation.evaluate(_half_flat, items, batch_size=4)
    skipped = evaluation.evaluate(_half_flat, items, batch_size=4, undefined="skip")
    assert [r["flat"] for r in scored] == [i % 2 == 0 for i in range(12)]
    cc_defined = [r["CC"] for r in scored if not r["flat"]]
    table = evaluation.mean_table({"scored": scored, "skipped": skipped}, columns=("CC", "NSS", "AUC-Judd"))
    assert table.loc["scored", "CC"] == pytest.approx(np.sum(cc_defined) / 12, abs=1e-12)  # flat maps: CC 0
    assert table.loc["scored", "n_CC"] == 12 and table.loc["scored", "flat maps"] == 6
    assert table.loc["skipped", "CC"] == pytest.approx(np.mean(cc_defined), abs=1e-12)
    assert table.loc["skipped", "n_CC"] == 6 and table.loc["skipped", "n_NSS"] == 6
    assert table.loc["skipped", "n_AUC-Judd"] == 12  # defined for a flat map (chance)
    note = evaluation.coverage_note(table)
    assert "scored: 6 of 12 maps flat" in note and "skipped: 6 of 12 maps flat, CC over 6 of 12 images" in note
    summary = evaluation.score_to_csv(_half_flat, items, tmp_path / "s.csv", batch_size=4, undefined="skip")
    assert summary["images"] == 12 and summary["n_CC"] == 6 and summary["flat maps"] == 6
    assert summary["CC"] == pytest.approx(np.mean(cc_defined), abs=1e-12)
    with open(tmp_path / "s.csv") as handle:
        written = list(csv.DictReader(handle))
    assert [w["flat"] for w in written] == [str(i % 2 == 0) for i in range(12)]
    assert evaluation.coverage_note(evaluation.mean_table({"m": scored[1::2]}, columns=("CC",))) == \
        "Every mean covers all images; no map is flat."


def test_an_image_without_fixations_leaves_the_others_scored():
    """Image 3 has no fixations: it is counted, scored for nothing that needs fixations or its
    ground truth, gives no sAUC negatives, and every other image is scored as if it were absent.
    Catches 'FixationPool: image 3 has no fixations' stopping the whole dataset."""
    items = _grid_items(8, empty=(3,))
    predict = lambda x: x.mean(1) ** 2  # noqa: E731
    rows = evaluation.evaluate(predict, items, batch_size=3, sauc=("pysaliency", "mit"), n_splits=5)
    assert rows[3]["fixations"] == 0 and set(rows[3]) == {"index", "fixations", "flat"}
    without = evaluation.evaluate(predict, [it for i, it in enumerate(items) if i != 3], batch_size=3, n_splits=5)
    for a, b in zip([r for i, r in enumerate(rows) if i != 3], without):
        assert a["sAUC"] == pytest.approx(b["sAUC"], abs=1e-12) and a["NSS"] == pytest.approx(b["NSS"], abs=1e-12)
        assert "sAUC (mit)" in a
    summary = evaluation.summarize(rows)
    assert summary["images without fixations"] == 1 and summary["n_NSS"] == 7 and summary["n_sAUC"] == 7
    assert summary["n_CC"] == 7  # no ground truth either
    # records: one without points among real-format records is scored the same way
    recs = _records(5)
    recs[2] = FixationRecord("empty", Path("/absent/e.jpg"), 30, 50, viewers=[np.zeros((0, 2))])
    pool = evaluation.FixationPool.from_records(recs)
    assert pool.counts(2, (10, 10)).sum() == 0 and pool.negatives(0, (10, 10)).sum() == pool.total((10, 10)).sum() - \
        pool.counts(0, (10, 10)).sum()
    rows = evaluation.baseline_scores(recs, max_side=40, n_splits=5)
    assert len([r for r in rows if r["image"] == "empty"]) == 2 and all("NSS" not in r for r in rows if r["image"] == "empty")


def test_points_outside_the_image_one_tolerance(shared_root):
    """FixationPool, like fixation_map, keeps points up to BORDER_TOLERANCE_PX outside (clipped) and
    raises beyond, naming the record and the point; real NUS Scene (19 points outside, all within
    1 px) loads and pools whole. Catches clipping however far out."""
    from hsi_core.fixations import BORDER_TOLERANCE_PX

    near = FixationRecord("near", Path("/absent/n.jpg"), 30, 50, viewers=[np.array([[49 + BORDER_TOLERANCE_PX, 3.0]])])
    pool = evaluation.FixationPool.from_records([near, _records(1)[0]])
    assert pool.counts(0, (30, 50))[3, 49] == 1
    far = FixationRecord("far", Path("/absent/f.jpg"), 30, 50, viewers=[np.array([[1.0, 2.0], [5.0, -12.0]])])
    with pytest.raises(ValueError, match=r"record far: 1 of 2 points .*x=5.0, y=-12.0"):
        evaluation.FixationPool.from_records([far, near]).total((10, 10))
    from hsi_core.fixations import pixel_indices

    root = shared_root / "nus-scene"
    raw = datasets.load_scanpaths(root / "tidy/fixations.mat")  # unclipped, as recorded
    for stimulus, viewers in zip(datasets.nus_scene_stimuli(root), raw):
        pts = np.concatenate([v[:, :2] for v in viewers if len(v)] or [np.zeros((0, 2))])
        pixel_indices(pts, datasets.image_size(stimulus, "NUS Scene"), where=stimulus.name)  # raises beyond the tolerance
    fv = sources.free_viewing(root)
    pool = evaluation.FixationPool.from_records(fv.records)
    assert pool.total((24, 32)).sum() == sum(sum(len(v) for v in r.viewers) for r in fv.records)
