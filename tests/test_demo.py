"""The demo world: on-disk layout in the real formats, byte-identical for a seed, and the planted
truth recoverable from the files (what later chapters rely on)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from pycocotools.coco import COCO

from hsi_core import datasets, demo
from hsi_core.io import read_image

TINY = dict(n_salicon=2, n_salicon_workers=3, n_hsb_per_class=5, n_hsb_viewers=2, n_scan_images=3, n_viewers=4)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_file_is_byte_identical_for_a_seed(tmp_path):
    a = _files(demo.generate_demo(tmp_path / "a", seed=5, **TINY))
    b = _files(demo.generate_demo(tmp_path / "b", seed=5, **TINY))
    assert a.keys() == b.keys() and len(a) > 100
    assert [k for k in a if a[k] != b[k]] == []  # .mat headers included (their timestamp is fixed)
    c = _files(demo.generate_demo(tmp_path / "c", seed=6, **TINY))
    changed = [k for k in a if k.endswith((".jpg", ".JPEG")) and a[k] != c.get(k)]
    assert len(changed) > 0.9 * sum(k.endswith((".jpg", ".JPEG")) for k in a)
    assert json.loads(a["truth.json"])["parameters"].items() >= {**TINY, "seed": 5}.items()


def test_layout_and_sizes(demo_world):
    truth = demo.load_truth(demo_world)
    p = truth["parameters"]
    train = sorted((demo_world / "salicon/images/train").glob("COCO_train2014_*.jpg"))
    val = sorted((demo_world / "salicon/images/val").glob("COCO_val2014_*.jpg"))
    assert len(train) == p["n_salicon"] and len(val) == max(2, p["n_salicon"] // 4)
    assert read_image(train[0]).shape == (480, 640, 3)
    assert len(list((demo_world / "hsb/images").rglob("*.jpg"))) == 20 * p["n_hsb_per_class"]
    assert len(list((demo_world / "hsb/saliency").rglob("*.png"))) == 20 * p["n_hsb_per_class"]
    names = sorted(q.name for q in (demo_world / "imagenet").glob("*.JPEG"))
    assert len(names) == 20
    for wnid, name in (("n02391049", "zebra"), ("n07749582", "lemon"), ("n01910747", "jellyfish"),
                       ("n04409515", "tennis_ball")):
        assert f"{wnid}_{name}.JPEG" in names
    assert read_image(demo_world / "imagenet" / "n02391049_zebra.JPEG").shape == (224, 224, 3)
    assert len(list((demo_world / "scanpaths/stimuli").glob("*.jpg"))) == p["n_scan_images"]
    assert (demo_world / "README.md").is_file()


def test_coco_polygons_match_the_planted_objects(demo_world):
    truth = demo.load_truth(demo_world)
    coco = COCO(str(demo_world / "coco/annotations/instances_train2014.json"))
    assert [(c["id"], c["name"]) for c in coco.loadCats(coco.getCatIds())] == list(enumerate(datasets.HSB_CLASSES, 1))
    for image_id, info in coco.imgs.items():
        planted = truth["salicon"][info["file_name"]]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert sorted(coco.cats[a["category_id"]]["name"] for a in anns) == sorted(o["label"] for o in planted)
        for ann in anns:
            obj = next(o for o in planted if o["label"] == coco.cats[ann["category_id"]]["name"])
            ys, xs = np.nonzero(coco.annToMask(ann))
            assert abs(xs.min() - obj["bbox"][0]) <= 1 and abs(ys.min() - obj["bbox"][1]) <= 1
            assert abs(len(xs) - obj["area"]) <= 0.02 * obj["area"]
            # the glyph really is painted there: its pixels carry the class colour, not the background
            pixels = read_image(demo_world / "salicon/images/train" / info["file_name"])[ys, xs] / 255.0
            hue = np.asarray(demo.CLASS_STYLES[obj["label"]].colour)
            cos = (pixels @ hue) / (np.linalg.norm(pixels, axis=1) * np.linalg.norm(hue) + 1e-9)
            assert np.median(cos) > 0.97


def _on_objects(points_xy: np.ndarray, objects: list[dict], height: int, width: int) -> tuple[float, float]:
    """Share of fixations on the planted objects, and the objects' share of the image."""
    union = np.any([demo.polygon_mask(np.asarray(o["polygon"]), height, width) for o in objects], axis=0)
    xy = np.clip(np.rint(points_xy).astype(int), 0, [width - 1, height - 1])
    return float(union[xy[:, 1], xy[:, 0]].mean()), float(union.mean())


@pytest.mark.parametrize("split", ["train", "val"])
def test_salicon_pairs_follow_the_real_files_order(demo_world, split):
    """Train pairs are [row, col], val pairs [x, y], 1-based; read the right way round, the free-viewing
    fixations fall on the planted objects far more often than the objects' share of the image."""
    truth = demo.load_truth(demo_world)
    raw = json.loads((demo_world / f"salicon/annotations/fixations_{split}2014.json").read_text())
    files = {im["id"]: im["file_name"] for im in raw["images"]}
    right, swapped, share = [], [], []
    for ann in raw["annotations"][:40]:
        pairs = np.asarray(ann["fixations"], float) - 1
        xy = pairs[:, ::-1] if split == "train" else pairs
        objects = truth["salicon"][files[ann["image_id"]]]
        on, frac = _on_objects(xy, objects, 480, 640)
        right.append(on), share.append(frac)
        swapped.append(_on_objects(xy[:, ::-1], objects, 480, 640)[0])
    assert np.mean(right) > 2.5 * np.mean(share) and np.mean(right) > 2 * np.mean(swapped)
    assert len({a["worker_id"] for a in raw["annotations"]}) == truth["parameters"]["n_salicon_workers"]


def test_hsb_saliency_marks_the_labelled_object_not_the_other(demo_world):
    truth = demo.load_truth(demo_world)
    items = datasets.load_hsb(demo_world / "hsb")
    ratios, two = [], 0
    for item in items:
        rel = str(Path(item.image_path).relative_to(demo_world / "hsb"))
        planted = truth["hsb"][rel]
        assert planted["label"] == item.label == planted["objects"][0]["label"]
        if len(planted["objects"]) < 2:
            continue
        two += 1
        sal = datasets.load_saliency_png(item.saliency_path).astype(float)
        h, w = sal.shape
        inside = [sal[demo.polygon_mask(np.asarray(o["polygon"]), h, w)].mean() for o in planted["objects"]]
        ratios.append(inside[0] / max(inside[1], 1e-3))
    assert 0.3 < two / len(items) < 0.7  # about half the images hold a second object
    assert np.median(ratios) > 4 and np.mean(np.asarray(ratios) > 1.5) > 0.9
    for label in datasets.HSB_CLASSES:
        assert {it.fold for it in items if it.label == label} == set(range(5))


def test_classes_are_told_apart_by_colour_alone():
    """Each class is drawn distinctly: a nearest-centroid rule on the mean colour of saturated
    (object) pixels, fitted on one draw and scored on another, is far above chance (0.05)."""
    def features(images: np.ndarray) -> np.ndarray:
        x = images.astype(float) / 255
        brightest = x.max(-1)
        saturated = (brightest - x.min(-1)) / np.maximum(brightest, 1e-6) > 0.6
        rows = []
        for img, mask, b in zip(x, saturated, brightest):
            px, v = img[mask], b[mask]
            rows.append(np.r_[(px / v[:, None]).mean(0), v.mean(), v.std()])
        return np.asarray(rows)

    xa, ya = demo.classification_set(6, size=48, seed=1)
    xb, yb = demo.classification_set(4, size=48, seed=2)
    fa, fb = features(xa), features(xb)
    mu, sd = fa.mean(0), fa.std(0)
    centroids = np.stack([((fa - mu) / sd)[ya == c].mean(0) for c in range(20)])
    pred = (((fb - mu) / sd)[:, None] - centroids[None]).__pow__(2).sum(-1).argmin(1)
    assert (pred == yb).mean() > 0.7
    styles = {(s.shape, s.colour, s.texture) for s in demo.CLASS_STYLES.values()}
    assert len(styles) == 20


def test_scanpath_mat_matches_the_real_nus_structure(demo_world, shared_root):
    real = sio.loadmat(shared_root / "nus-scene/tidy/fixations.mat")["fixations"]
    ours = sio.loadmat(demo_world / "scanpaths/explanation/fixations.mat")["fixations"]
    assert ours.dtype == real.dtype == object and ours.ndim == real.ndim == 2
    assert ours[0, 0].dtype == real[0, 0].dtype and ours[0, 0].shape[1] == real[0, 0].shape[1] == 4
    # both store row, col: the first column is bounded by the image height
    assert ours[0, 0][:, 0].max() < 240


@pytest.fixture(scope="module")
def scanpaths(demo_world):
    truth = demo.load_truth(demo_world)["scanpaths"]
    tasks = {t: datasets.load_scanpaths(demo_world / f"scanpaths/{t}/fixations.mat") for t in ("free_viewing", "explanation")}
    return truth, tasks


def test_scanpaths_have_realistic_timing(scanpaths):
    truth, tasks = scanpaths
    for paths in tasks.values():
        assert len(paths) == len(truth["labels"]) and {len(row) for row in paths} == {len(truth["viewer_groups"])}
        for trial in (t for row in paths for t in row):
            assert 10 <= len(trial) <= 20
            x, y, start, end = trial.T
            assert (x >= 0).all() and (x < truth["width"]).all() and (y >= 0).all() and (y < truth["height"]).all()
            assert np.all((end - start > 0.15 - 1e-6) & (end - start < 0.4 + 1e-6))  # 150-400 ms
            assert np.all(start[1:] > end[:-1])  # a saccade between fixations


def test_planted_viewer_groups_and_task_effect(scanpaths, demo_world):
    """The groups are planted as in the EMHMM reference study: the same ROIs with the same spread (so
    fixation dispersion does not separate them), different starts (focused viewers start on the key
    object) and transitions (explorative viewers switch objects, so their saccades are longer); the
    explanation task pulls every viewer toward the focused pattern."""
    truth, tasks = scanpaths
    rows = list(csv.DictReader(open(demo_world / "scanpaths/viewers.csv")))
    groups = np.array([r["group"] for r in rows])
    assert list(groups) == truth["viewer_groups"] and set(groups) == {"explorative", "focused"}
    assert (groups == "explorative").sum() != (groups == "focused").sum()  # unequal sizes
    labels = list(csv.DictReader(open(demo_world / "scanpaths/labels.csv")))
    assert [r["label"] for r in labels] == [truth["objects"][r["image"]][0]["label"] for r in labels]
    stats = {}
    for task, paths in tasks.items():
        spread = np.array([[np.linalg.norm(t[:, :2] - t[:, :2].mean(0), axis=1).mean() for t in row] for row in paths])
        saccade = np.array([[np.linalg.norm(np.diff(t[:, :2], axis=0), axis=1).mean() for t in row] for row in paths])
        key = [truth["objects"][lab["image"]][0] for lab in labels]
        first_on_key = np.array([[np.hypot(*(t[0, :2] - k["centre"])) < k["radius"] for t in row]
                                 for row, k in zip(paths, key)])
        stats[task] = {g: {"spread": spread[:, groups == g].mean(), "saccade": saccade[:, groups == g].mean(),
                           "first on key": first_on_key[:, groups == g].mean()} for g in ("explorative", "focused")}
    free = stats["free_viewing"]
    assert free["explorative"]["spread"] < 1.25 * free["focused"]["spread"]
    assert free["focused"]["spread"] < 1.25 * free["explorative"]["spread"]
    assert free["focused"]["first on key"] > free["explorative"]["first on key"] + 0.3
    assert free["explorative"]["saccade"] > 1.3 * free["focused"]["saccade"]
    assert stats["explanation"]["explorative"]["first on key"] > free["explorative"]["first on key"] + 0.2


def test_ensure_demo_and_command_line(tmp_path):
    root = tmp_path / "cli"
    out = subprocess.run([sys.executable, "-m", "hsi_core.demo", str(root), "--seed", "2",
                          *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]],
                         capture_output=True, text=True, timeout=120, check=True)
    assert str(root) in out.stdout
    assert demo.load_truth(root)["parameters"].items() >= {**TINY, "seed": 2}.items()
    stamp = (root / "truth.json").stat().st_mtime_ns
    assert demo.ensure_demo(root) == root and (root / "truth.json").stat().st_mtime_ns == stamp  # not regenerated
    (root / "truth.json").unlink()  # an unfinished world (truth.json is written last) is generated again
    demo.ensure_demo(root, seed=2, **TINY)
    assert demo.load_truth(root)["parameters"]["seed"] == 2


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="n_hsb_per_class"):
        demo.generate_demo(tmp_path, n_hsb_per_class=3)
    with pytest.raises(ValueError, match="viewers"):
        demo.generate_demo(tmp_path, n_viewers=1)
    with pytest.raises(FileNotFoundError, match="truth.json"):
        demo.load_truth(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown viewer group"):
        demo.viewer_strategy(np.random.default_rng(0), "bored", "explanation",
                             {"centre": [5.0, 5.0], "radius": 3.0}, [], 20, 20)


def test_ensure_demo_rebuilds_a_world_from_another_generator(tmp_path):
    """A demo world left by an older version of the generator (or other sizes) is rebuilt, not reused."""
    root = tmp_path / "world"
    demo.ensure_demo(root, **TINY)
    truth = json.loads((root / "truth.json").read_text())
    assert truth["generator"] == demo.generator_fingerprint()
    (root / "stale-file-from-an-old-version.txt").write_text("old")
    truth["generator"] = "an-older-version"
    (root / "truth.json").write_text(json.dumps(truth))
    demo.ensure_demo(root, **TINY)
    assert json.loads((root / "truth.json").read_text())["generator"] == demo.generator_fingerprint()
    assert not (root / "stale-file-from-an-old-version.txt").exists()
    before = (root / "truth.json").stat().st_mtime_ns
    demo.ensure_demo(root, **TINY)  # up to date: left alone
    assert (root / "truth.json").stat().st_mtime_ns == before
