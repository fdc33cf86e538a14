"""HSI Algorithm 1 on constructed masks, and on real COCO masks with SALICON fixations when present."""

import numpy as np
import pytest
import torch

from hsi_core import pseudo_labels
from hsi_core.fixations import saliency_map
from hsi_core.paths import shared_data_root


def _world():
    h, w = 40, 50
    fix = np.zeros((h, w), dtype=bool)
    big = np.zeros((h, w), dtype=bool)
    big[0:20, 0:25] = True                      # 25 % of the image
    small = np.zeros((h, w), dtype=bool)
    small[30:34, 40:44] = True                  # 0.8 % of the image
    unseen = np.zeros((h, w), dtype=bool)
    unseen[20:40, 0:25] = True                  # 25 %, few fixations
    fix[2:20:2, 2:25:3] = True                  # 9 x 8 = 72 fixations on "big"
    fix[31, 41] = fix[32, 42] = True            # 2 on "small"
    fix[25, 5] = True                           # 1 on "unseen": 1/75 < 0.05
    fix[5, 45] = fix[10, 45] = True             # 2 on the background
    return fix, big, small, unseen


def test_algorithm1_keeps_large_fixated_objects():
    fix, big, small, unseen = _world()
    out = pseudo_labels.algorithm1(fix, [("dog", big), ("cup", small), ("sofa", unseen)], sigma=3)
    assert [p.category for p in out] == ["dog"]
    dog = out[0]
    assert dog.area_ratio == pytest.approx(0.25)
    assert dog.fixation_ratio == pytest.approx(72 / 77)
    assert np.array_equal(dog.fixation_map, big & fix)
    assert np.allclose(dog.saliency_map, saliency_map(big & fix, 3), atol=1e-6)
    assert dog.saliency_map.max() == pytest.approx(1.0)


def test_algorithm1_thresholds_are_inclusive_and_move_the_decision():
    fix, big, small, unseen = _world()
    masks = [("dog", big), ("cup", small), ("sofa", unseen)]
    # area share of 'cup' is exactly 16 / 2000 = 0.008; T_a = 0.008 lets it in (>=), fixation share 2/77 >= 0.02.
    names = [p.category for p in pseudo_labels.algorithm1(fix, masks, t_a=0.008, t_r=0.02, sigma=2)]
    assert names == ["dog", "cup"]
    names = [p.category for p in pseudo_labels.algorithm1(fix, masks, t_a=0.1, t_r=1 / 77, sigma=2)]
    assert names == ["dog", "sofa"]
    assert pseudo_labels.algorithm1(fix, masks, t_a=0.9) == []


def test_algorithm1_merges_instances_of_one_category():
    fix, big, small, unseen = _world()
    left, right = big.copy(), big.copy()
    left[:, 12:] = False
    right[:, :12] = False
    out = pseudo_labels.algorithm1(fix, [("dog", left), ("dog", right)], sigma=2)
    assert len(out) == 1 and np.array_equal(out[0].fixation_map, big & fix)
    # Each half alone is 12 % / 13 % of the image; merged, 25 %: merging decides the area test.
    assert out[0].area_ratio == pytest.approx(0.25)


def test_algorithm1_bad_input():
    fix, big, *_ = _world()
    with pytest.raises(ValueError, match="empty"):
        pseudo_labels.algorithm1(np.zeros_like(fix), [("dog", big)])
    with pytest.raises(ValueError, match="shape"):
        pseudo_labels.algorithm1(fix, [("dog", big[:10])])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        pseudo_labels.algorithm1(fix[None], [("dog", big)])


def test_stack_pseudo_labels_pads():
    fix, big, small, unseen = _world()
    out = pseudo_labels.algorithm1(fix, [("dog", big), ("sofa", unseen)], t_r=0.01, sigma=2)
    st = pseudo_labels.stack_pseudo_labels(out, max_objects=4)
    assert st["saliency"].shape == (4, 40, 50) and st["valid"].tolist() == [True, True, False, False]
    assert st["categories"] == ["dog", "sofa"] and st["fixations"].dtype == torch.bool


def test_algorithm1_on_real_coco_masks():
    """Real COCO masks (ids 222564, 309022, 522418, also SALICON val images). Their SALICON fixations are
    not in ../shared/data, so a uniform grid of fixations stands in: then the fixation share of an object
    is close to its area share, and exactly the objects passing the area test get pseudo-labels."""
    root = shared_data_root()
    if root is None or not (root / "coco-tiny").is_dir():
        pytest.skip("../shared/data/coco-tiny not available")
    from hsi_core import datasets

    path = root / "coco-tiny" / "instances_train2017_small.json"
    coco = datasets.load_coco(path)
    kept = 0
    for image_id in (222564, 309022, 522418):
        masks = datasets.load_coco_masks(path, image_id, coco=coco)
        h, w = masks[0].mask.shape
        fix = np.zeros((h, w), dtype=bool)
        fix[::4, ::4] = True
        out = pseudo_labels.algorithm1(fix, masks, sigma=19)
        expected = {m.category for m in masks if m.mask.mean() >= 0.1}
        assert {p.category for p in out} == expected
        for p in out:
            assert p.fixation_ratio == pytest.approx(p.area_ratio, abs=0.02)
            assert not (p.fixation_map & ~fix).any() and p.saliency_map.shape == (h, w)
        kept += len(out)
    assert kept >= 1


def test_pseudo_label_cache_on_demo_world(tmp_path):
    from hsi_core import datasets, demo

    world = demo.ensure_demo(None)
    cache = pseudo_labels.prepare(
        world / "salicon/annotations/fixations_val2014.json", world / "salicon/images/val",
        world / "coco/annotations/instances_val2014.json", tmp_path / "cache", size=64, max_objects=3, t_a=0.01,
        progress=False)
    ds = pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES)
    assert len(ds) >= 1 and len(ds) + len(ds.skipped) >= 2
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["obj_saliency"].shape == (3, 64, 64)
    v = item["valid"]
    assert v[0] and item["obj_fixations"][v].flatten(1).any(1).all()
    assert (item["obj_saliency"][~v] == 0).all()
    # Pseudo fixations are a subset of the image's fixations (HSI Algorithm 1: f~ = m . f_pv).
    assert not (item["obj_fixations"][v] & ~item["fixations"][None]).any()
    truth = demo.load_truth(world)
    # The kept categories are objects planted in that image.
    name = f"COCO_val2014_{ds.image_id(0):012d}.jpg"
    planted = {o["label"] for o in truth["salicon"][name]}
    assert {datasets.HSB_CLASSES[int(k)] for k in item["obj_labels"][v]} <= planted


def test_area_test_readings_keep_different_objects():
    """``area_share``: object area / image area >= T_a; ``attended_share``: mean free-viewing
    saliency inside the mask >= T_a. A small, heavily looked-at object passes only the second; a large
    object that holds some fixations but mostly unattended area passes only the first."""
    h, w = 60, 80
    fix = np.zeros((h, w), dtype=bool)
    small = np.zeros((h, w), dtype=bool)
    small[10:16, 10:16] = True                  # 0.75 % of the image
    fix[10:16:2, 10:16:2] = True                # 9 fixations on it
    large = np.zeros((h, w), dtype=bool)
    large[:, 40:] = True                        # 50 % of the image
    fix[58, 78] = fix[2, 78] = True             # 2 fixations in its far corners: 2 / 11 >= T_r
    pairs = [("cup", small), ("wall", large)]
    area = pseudo_labels.algorithm1(fix, pairs, t_a=0.1, sigma=3)
    attended = pseudo_labels.algorithm1(fix, pairs, t_a=0.1, sigma=3, reading="attended_share")
    assert [p.category for p in area] == ["wall"] and [p.category for p in attended] == ["cup"]
    q = saliency_map(fix, 3)
    assert attended[0].attended_share == pytest.approx(float(q[small].mean()), rel=1e-5)
    assert area[0].area_ratio == pytest.approx(0.5)
    with pytest.raises(ValueError, match="reading"):
        pseudo_labels.algorithm1(fix, pairs, reading="area")


def test_blurred_maps_equal_saliency_map():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 48, 64)) > 0.995
    maps[0, 5, 7] = True
    maps[1] = False
    maps[1, 40:, 50:] = rng.random((8, 14)) > 0.5
    maps[2, 0, 0] = maps[2, 47, 63] = True       # the borders: zero padding as scipy's mode="constant"
    got = pseudo_labels.blurred_maps(maps, 4.0)
    assert np.abs(got - saliency_map(maps.astype(np.float32), 4.0)).max() < 1e-5
    with pytest.raises(ValueError, match="empty"):
        pseudo_labels.blurred_maps(np.zeros((1, 8, 8), dtype=bool), 2.0)
