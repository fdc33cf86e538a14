"""Every dataset in ../shared/data and the demo world load through the loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hsi_core import datasets, demo, io
from hsi_core.metrics import auc_judd


def _raw_salicon(path):
    """The file's own pairs per (image id, worker id), read with json alone (not through our loader)."""
    import json

    content = json.loads(path.read_text())
    return {(a["image_id"], a["worker_id"]): np.asarray(a["fixations"], float) for a in content["annotations"]}


@pytest.mark.parametrize("split,to_xy", [
    # train (2015 release): [row, col], 1-based -> x = col - 1, y = row - 1
    ("train", lambda pairs: pairs[:, ::-1] - 1.0),
    # val (the older release beside the project): [x, y], already 0-based (x runs from 0.0 to 639.0)
    ("val", lambda pairs: pairs),
])
def test_salicon_points_are_the_files_points(shared_root, split, to_xy):
    """Every point inside the image is the file's own pair, in the order and offset its release uses:
    a swapped x/y, a wrong offset or points moved by clipping all change some of them."""
    ann = shared_root / "salicon-samples" / "annotations" / f"fixations_{split}2014_examples.json"
    images = datasets.load_salicon_fixations(ann)
    assert len(images) == 10
    compared = 0
    for (image_id, worker), pairs in _raw_salicon(ann).items():
        image = images[image_id]
        expected = to_xy(pairs)
        inside = ((expected >= 0) & (expected <= [image.width - 1, image.height - 1])).all(axis=1)
        loaded = image.points[worker]
        assert len(loaded) == len(expected)  # every sample kept, in the file's order
        # inside points unchanged; the few raw samples just past the border are moved onto it
        np.testing.assert_allclose(loaded[inside], expected[inside], atol=1e-9, err_msg=f"{ann.name}: image {image_id}")
        assert (np.abs(loaded[~inside] - expected[~inside]) <= datasets.BORDER_TOLERANCE_PX).all()
        compared += int(inside.sum())
    assert compared > 5000
    with pytest.raises(ValueError, match="outside"):
        datasets.load_salicon_fixations(ann, coord_order="row_col" if split == "val" else "xy")


def test_coco_masks(shared_root):
    path = shared_root / "coco-tiny" / "instances_train2017_small.json"
    coco = datasets.load_coco(path)
    total = 0
    for image_id in coco.imgs:
        objects = datasets.load_coco_masks(path, image_id, coco=coco)
        instances = datasets.load_coco_masks(path, image_id, coco=coco, merge_by_category=False)
        assert len(objects) <= len(instances)
        assert {o.category for o in objects} == {o.category for o in instances}
        for o in objects:
            info = coco.imgs[image_id]
            assert o.mask.shape == (info["height"], info["width"]) and 0 < o.area_fraction <= 1
        total += len(instances)
    assert total >= 190  # the README counts 197 instances (a few may be empty polygons)


def test_mit1003_subset(shared_root):
    items = datasets.load_mit1003(shared_root / "mit1003-subset")
    assert len(items) == 100 and all(it.fixation_map_path is not None for it in items)
    density = items[0].density()
    assert density.ndim == 2 and density.max() > 0
    demo_items = datasets.load_mit1003(shared_root / "mit1003-subset" / "demo")
    fix = demo_items[0].fixations()
    assert fix.shape == (675, 1024) and fix.sum() == 259
    bias = datasets.load_mit1003_center_bias(shared_root / "mit1003-subset" / "center_bias.mat")
    assert bias.shape == (100, 100)
    assert bias[50, 50] > bias[0, 0]


def test_nus_scene_scanpaths(shared_root):
    root = shared_root / "nus-scene"
    paths = datasets.load_scanpaths(root / "tidy" / "fixations.mat")
    stimuli = datasets.nus_scene_stimuli(root)
    assert len(paths) == 500 and len(paths[0]) == 12 and len(stimuli) == 500
    from PIL import Image

    inside = []
    for i in range(0, 500, 25):
        w, h = Image.open(stimuli[i]).size
        pts = np.concatenate([p for p in paths[i] if len(p)])
        inside.append(np.mean((pts[:, 0] <= w) & (pts[:, 1] <= h)))
        assert (pts[:, 3] > pts[:, 2]).all()  # end after start
        for path in paths[i]:  # read as durations, a viewer's fixations never overlap in time
            assert (path[1:, 2] >= path[:-1, 3] - 1e-6).all()
    assert np.mean(inside) > 0.99


def _salicon_2017_mat(path, workers, resolution=(480, 640)):
    """Write a file in the SALICON 2017 layout: a ``gaze`` struct array, ``image``, ``resolution``."""
    from scipy.io import savemat

    gaze = np.zeros((len(workers), 1), dtype=[("location", "O"), ("timestamp", "O"), ("fixations", "O")])
    for k, fix in enumerate(workers):
        gaze[k, 0]["location"] = np.ones((3, 2))
        gaze[k, 0]["timestamp"] = np.arange(3.0)
        gaze[k, 0]["fixations"] = np.asarray(fix, dtype=np.float64).reshape(-1, 2)
    savemat(path, {"gaze": gaze, "image": "COCO_val2014_000000000042", "resolution": np.array([resolution])})
    return path


def test_salicon_2017_mat(tmp_path):
    path = _salicon_2017_mat(tmp_path / "COCO_val2014_000000000042.mat",
                             [[[1, 1], [640, 480], [320, 10]], [], [[100, 200]], [[643, 482]]])
    image = datasets.load_salicon_2017_mat(path)
    assert (image.height, image.width) == (480, 640) and image.file_name == "COCO_val2014_000000000042"
    assert sorted(image.points) == [0, 2, 3]  # the empty worker is left out; a lone fixation is kept
    np.testing.assert_allclose(image.points[0], [[0, 0], [639, 479], [319, 9]])  # [x, y], 1-based -> 0-based
    np.testing.assert_allclose(image.points[2], [[99, 199]])
    np.testing.assert_allclose(image.points[3], [[639, 479]])  # a 3 px overshoot is clipped
    fix = image.fixation_map()
    assert fix.sum() == 4 and fix[199, 99] and fix[9, 319]


def test_mit1003_release_layout(tmp_path):
    """The full release names maps <name>_fixMap.jpg and stores the points as <name>_fixPts.jpg."""
    from hsi_core.io import save_image

    (tmp_path / "ALLSTIMULI").mkdir()
    (tmp_path / "ALLFIXATIONMAPS").mkdir()
    save_image(tmp_path / "ALLSTIMULI" / "i05june05_static_street_boston_p1010764.jpeg", np.zeros((30, 40, 3), np.uint8))
    density = np.zeros((30, 40), np.uint8)
    density[10:20, 5:15] = 200
    points = np.zeros((30, 40), np.uint8)
    points[[3, 15, 25], [4, 20, 35]] = 255
    save_image(tmp_path / "ALLFIXATIONMAPS" / "i05june05_static_street_boston_p1010764_fixMap.jpg", density)
    save_image(tmp_path / "ALLFIXATIONMAPS" / "i05june05_static_street_boston_p1010764_fixPts.jpg", points)
    (item,) = datasets.load_mit1003(tmp_path)
    assert item.density()[15, 10] > 0.7 and item.density()[2, 35] < 0.1
    fix = item.fixations()
    assert fix[3, 4] and fix[15, 20] and fix[25, 35] and fix.sum() < 20  # JPEG ringing stays below threshold


def test_figrim(shared_root):
    items = datasets.load_figrim(shared_root / "figrim-samples", "amusement_park")
    assert len(items) == 30
    fix = datasets.figrim_fixations(items[0])
    assert fix.shape == (1000, 1000) and fix.any()


def test_imagenet_folder(shared_root):
    items = datasets.list_imagenet_images(shared_root / "imagenet-samples")
    assert len(items) == 1000 and len({it.wnid for it in items}) == 1000
    assert items[1].class_name == "goldfish"


def test_imagenet_val_layout(tmp_path):
    from hsi_core.io import save_image

    for i in (1, 2):
        save_image(tmp_path / f"ILSVRC2012_val_{i:08d}.JPEG", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000001,n01751748 1 2 3 4\nILSVRC2012_val_00000002,n09193705 1 2 3 4\n"
    )
    with pytest.raises(FileNotFoundError, match="synset mapping"):  # wnids alone would prompt CLIP with "n01751748"
        datasets.list_imagenet_images(tmp_path)
    (tmp_path / "LOC_synset_mapping.txt").write_text("n01751748 sea snake\nn09193705 alp\n")
    items = datasets.list_imagenet_images(tmp_path)
    assert [(it.wnid, it.class_name) for it in items] == [("n01751748", "sea snake"), ("n09193705", "alp")]


def test_demo_world_loads(demo_world):
    train = datasets.load_salicon_fixations(demo_world / "salicon" / "annotations" / "fixations_train2014.json")
    val = datasets.load_salicon_fixations(demo_world / "salicon" / "annotations" / "fixations_val2014.json")
    truth = demo.load_truth(demo_world)
    for images in (train, val):
        for image in images.values():
            objects = truth["salicon"][image.file_name]
            # planted: fixations fall on the objects far more than the objects' share of the image
            coco_path = demo_world / "coco" / "annotations" / ("instances_train2014.json" if "train" in image.file_name else "instances_val2014.json")
            masks = datasets.load_coco_masks(coco_path, image.image_id)
            assert {m.category for m in masks} == {o["label"] for o in objects}
            union = np.any([m.mask for m in masks], axis=0)
            pts = np.rint(image.all_points()).astype(int)
            on_objects = union[pts[:, 1], pts[:, 0]].mean()
            assert on_objects > 3 * union.mean()
    items = datasets.load_hsb(demo_world / "hsb")
    assert len(items) == 160
    for label in datasets.HSB_CLASSES:
        assert {it.fold for it in items if it.label == label} == set(range(5))
    paths = datasets.load_scanpaths(demo_world / "scanpaths" / "explanation" / "fixations.mat")
    assert len(paths) == 24 and len(paths[0]) == 12 and paths[0][0].shape[1] == 4
    assert len(datasets.list_imagenet_images(demo_world / "imagenet")) == 20


def test_torch_datasets(demo_world):
    hsb = datasets.HSBDataset(demo_world / "hsb", folds=[0], size=(64, 64))
    loader = DataLoader(hsb, batch_size=4, collate_fn=datasets.collate_dicts)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 64, 64) and batch["saliency"].shape == (4, 64, 64)
    assert batch["fixations"].dtype == torch.bool and batch["fixations"].flatten(1).any(1).all()
    assert (batch["fold"] == 0).all()
    items = datasets.load_hsb(demo_world / "hsb")[:3]

    def ten_points(it):  # ten fixations on a diagonal, at the map's own resolution
        h, w = datasets.load_saliency_png(it.saliency_path).shape
        fix = np.zeros((h, w), bool)
        fix[np.arange(10) * (h // 10), np.arange(10) * (w // 10)] = True
        return fix

    sal = datasets.SaliencyDataset([it.image_path for it in items],
                                   [lambda it=it: datasets.load_saliency_png(it.saliency_path) for it in items],
                                   [lambda it=it: ten_points(it) for it in items], size=(32, 32))
    sample = sal[1]
    assert sample["fixations"].sum() == 10 and sample["image"].shape == (3, 32, 32)
    assert sample["saliency"].shape == (32, 32) and 0 <= sample["saliency"].min() < sample["saliency"].max() <= 1


def test_hsb_folds_without_fold_column(tmp_path, demo_world):
    import shutil

    root = tmp_path / "hsb"
    shutil.copytree(demo_world / "hsb", root)
    lines = (root / "labels.csv").read_text().splitlines()
    (root / "labels.csv").write_text("\n".join(",".join(l.split(",")[:2]) for l in lines) + "\n")
    items = datasets.load_hsb(root)
    for label in datasets.HSB_CLASSES:
        assert {it.fold for it in items if it.label == label} == set(range(5))


def test_demo_is_deterministic(tmp_path):
    a = demo.generate_demo(tmp_path / "a", n_salicon=2, n_salicon_workers=2, n_hsb_per_class=5,
                           n_hsb_viewers=2, n_scan_images=2, n_viewers=2, seed=3)
    b = demo.generate_demo(tmp_path / "b", n_salicon=2, n_salicon_workers=2, n_hsb_per_class=5,
                           n_hsb_viewers=2, n_scan_images=2, n_viewers=2, seed=3)
    for rel in ("truth.json", "salicon/annotations/fixations_train2014.json", "hsb/labels.csv"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    from hsi_core.io import read_image

    first = sorted((a / "hsb" / "images").rglob("*.jpg"))[0]
    assert np.array_equal(read_image(first), read_image(b / first.relative_to(a)))


def test_mit300_stimuli(tmp_path):
    from hsi_core.io import save_image

    with pytest.raises(FileNotFoundError, match="saliency.tuebingen.ai"):
        datasets.load_mit300(tmp_path / "MIT300")
    (tmp_path / "BenchmarkIMAGES").mkdir()
    for name in ("i1.jpg", "i2.jpg"):
        save_image(tmp_path / "BenchmarkIMAGES" / name, np.zeros((6, 8, 3), np.uint8))
    (tmp_path / "BenchmarkIMAGES" / "Thumbs.db").write_bytes(b"")
    assert [it.name for it in datasets.load_mit300(tmp_path)] == ["i1", "i2"]


def test_hsb_folds_are_stratified_and_deterministic():
    labels = [c for c in datasets.HSB_CLASSES for _ in range(8)]
    folds = datasets.hsb_folds(labels, n_folds=5, seed=0)
    assert np.array_equal(folds, datasets.hsb_folds(labels, n_folds=5, seed=0))
    assert not np.array_equal(folds, datasets.hsb_folds(labels, n_folds=5, seed=1))
    for c in datasets.HSB_CLASSES:
        counts = np.bincount(folds[np.asarray(labels) == c], minlength=5)
        assert counts.min() >= 1 and counts.max() - counts.min() <= 1  # 8 images: folds of 1 or 2
    assert sorted(np.bincount(folds)) == [32] * 5


# ----------------------------------------------------------------------------- SALICON origin (issue 12, item 5)
def test_salicon_origin_detected_per_file_on_the_real_sample(shared_root):
    """The train sample is 1-based [row, col]; the older val release is 0-based [x, y] (x 0.0..639.x):
    its points must come back unshifted (only the few raw samples past the border are clipped)."""
    import json

    ann = shared_root / "salicon-samples" / "annotations"
    assert datasets.salicon_layout(ann / "fixations_train2014_examples.json") == ("row_col", 1)
    val_path = ann / "fixations_val2014_examples.json"
    assert datasets.salicon_layout(val_path) == ("xy", 0)
    raw = json.loads(val_path.read_text())
    val = datasets.load_salicon_fixations(val_path)
    first = next(a for a in raw["annotations"] if a["fixations"])
    image = val[first["image_id"]]
    want = np.clip(np.asarray(first["fixations"], dtype=float), 0, [image.width - 1, image.height - 1])
    assert np.array_equal(image.points[first["worker_id"]], want)
    assert min(im.all_points()[:, 0].min() for im in val.values()) == 0.0


def test_salicon_origin_switch_and_detection(tmp_path):
    import json

    image = {"id": 1, "file_name": "a.jpg", "height": 480, "width": 640}

    def write(name, pairs):
        path = tmp_path / name
        path.write_text(json.dumps({"images": [image], "annotations": [
            {"id": 1, "image_id": 1, "worker_id": 0, "fixations": pairs}]}))
        return path

    zero = write("zero.json", [[0.0, 0.0], [0.4, 200.0], [639.0, 479.0], [600.0, 300.0]])
    one = write("one.json", [[1, 1], [640, 480], [640, 300], [600, 300]])
    assert datasets.salicon_layout(zero) == ("xy", 0)
    assert datasets.salicon_layout(one) == ("xy", 1)
    assert np.array_equal(datasets.load_salicon_fixations(zero)[1].points[0][:, 0], [0.0, 0.4, 639.0, 600.0])
    assert np.array_equal(datasets.load_salicon_fixations(one)[1].points[0][:, 0], [0, 639, 639, 599])
    forced = datasets.load_salicon_fixations(zero, origin=1)[1].points[0]
    assert np.array_equal(forced[:, 0], [0.0, 0.0, 638.0, 599.0])
    with pytest.raises(ValueError, match="origin"):
        datasets.load_salicon_fixations(zero, origin=2)


def test_salicon_fixation_pixels_match_the_maps(shared_root):
    ann = shared_root / "salicon-samples" / "annotations"
    for name in ("fixations_train2014_examples.json", "fixations_val2014_examples.json"):
        images, pixels = datasets.salicon_fixation_pixels(ann / name)
        full = datasets.load_salicon_fixations(ann / name)
        for image_id, image in full.items():
            assert np.array_equal(np.flatnonzero(image.fixation_map()), pixels[image_id])


def test_salicon_json_is_streamed(tmp_path, monkeypatch):
    """The fixation json is read in chunks, never as one ``json.loads`` of the file."""
    import json

    path = tmp_path / "f.json"
    anns = [{"id": k, "image_id": 1, "worker_id": k, "fixations": [[10 + k, 500.5], [20, 30]]} for k in range(300)]
    content = {"info": {"a": [1, 2]}, "images": [{"id": 1, "file_name": "a.jpg", "height": 480, "width": 640}],
               "annotations": anns, "version": 123456789, "type": "fixations"}
    path.write_text(json.dumps(content))
    for chunk in (3, 7, 64):  # values cut by a chunk's end (the number 123456789 too) are read whole
        assert {k: v for k, _, v in io.iter_json_members(path, chunk_chars=chunk)} == content
    monkeypatch.setattr(io, "JSON_CHUNK_CHARS", 64)
    monkeypatch.setattr(json, "loads", lambda *a, **k: pytest.fail("json.loads of the whole file"))
    image = datasets.load_salicon_fixations(path)[1]
    assert len(image.points) == 300 and image.points[299][0].tolist() == [499.5, 308.0]  # [row, col], 1-based
    path.write_text(path.read_text()[:-200])
    with pytest.raises(ValueError, match="f.json: broken json"):
        datasets.load_salicon_fixations(path)
