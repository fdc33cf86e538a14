"""HSI Algorithm 1 once (``pseudo_labels.prepare``) and the cache training reads (``PseudoLabelCache``):
same items as computing on the fly, resumable, nothing half-written taken as complete, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hsi_core import datasets, demo, maps, pseudo_labels

SIZE, T_A = 32, 0.01  # the demo world's objects cover 1-7 % of an image


def _sources(world: Path, split: str = "val") -> tuple[Path, Path, Path]:
    return (world / f"salicon/annotations/fixations_{split}2014.json", world / f"salicon/images/{split}",
            world / f"coco/annotations/instances_{split}2014.json")


def _prepare(world: Path, cache: Path, **kwargs) -> Path:
    kwargs = {"size": SIZE, "t_a": T_A, "progress": False, **kwargs}
    return pseudo_labels.prepare(*_sources(world, kwargs.pop("split", "val")), cache, **kwargs)


def _reference_item(world: Path, image_id: int, max_objects: int) -> dict | None:
    """What training computed on the fly before the cache (the old ``SaliconPseudoLabels`` item),
    from the library's primitives: load, HSI Algorithm 1 at native size, stack, resize."""
    from hsi_core.fixations import saliency_map
    from hsi_core.io import read_image

    fix_json, image_dir, inst = _sources(world)
    image = datasets.load_salicon_fixations(fix_json)[image_id]
    fix = image.fixation_map()
    labels = pseudo_labels.algorithm1(fix, datasets.load_coco_masks(inst, image_id), T_A)
    if not labels:
        return None
    st = pseudo_labels.stack_pseudo_labels(labels, max_objects)
    size = (SIZE, SIZE)
    ids = torch.zeros(max_objects, dtype=torch.long)
    ids[: len(st["categories"])] = torch.tensor([datasets.HSB_CLASSES.index(c) for c in st["categories"]])
    return {
        "image": datasets.to_tensor_image(read_image(image_dir / image.file_name), size),
        "saliency": maps.resize(saliency_map(fix.astype(np.float32), 19), size),
        "fixations": datasets.resize_fixations(fix, size),
        "obj_saliency": torch.stack([maps.resize(m.numpy(), size) for m in st["saliency"]]),
        "obj_fixations": torch.stack([datasets.resize_fixations(m.numpy(), size) for m in st["fixations"]]),
        "valid": st["valid"],
        "obj_labels": ids,
    }


def test_cache_items_equal_on_the_fly_items(demo_world, tmp_path):
    cache = _prepare(demo_world, tmp_path / "c", max_objects=3, shard_size=2)
    ds = pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES)
    n_images = len(datasets.load_salicon_fixations(_sources(demo_world)[0]))
    assert len(ds) + len(ds.skipped) == n_images and len(ds) >= 2
    for i in range(len(ds)):
        got, ref = ds[i], _reference_item(demo_world, ds.image_id(i), 3)
        assert got["index"] == i
        for key, want in ref.items():
            assert got[key].shape == want.shape and got[key].dtype == want.dtype, key
            # uint8 images (<= 1/510) and float16 maps (<= 1e-3 at max 1) are the only differences
            assert (got[key].float() - want.float()).abs().max() <= 2.5e-3, key


def test_prepare_resumes_and_skips_finished_shards(demo_world, tmp_path, monkeypatch):
    cache = _prepare(demo_world, tmp_path / "c", split="train", limit=12, shard_size=4)
    first = pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES)
    before = [first[i]["obj_saliency"] for i in range(len(first))]
    # a kill during the second shard: no manifest, shard 00001 missing, a temporary folder left over
    (cache / "manifest.json").unlink()
    shutil.rmtree(cache / "shards/00001")
    (cache / "shards/.tmp-00001-999").mkdir()
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES)
    calls = []
    real = pseudo_labels._write_shard
    monkeypatch.setattr(pseudo_labels, "_write_shard", lambda task: calls.append(task["final"]) or real(task))
    _prepare(demo_world, cache, split="train", limit=12, shard_size=4)
    assert [Path(c).name for c in calls] == ["00001"]
    assert not list((cache / "shards").glob(".tmp-*"))
    again = pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES)
    assert len(again) == len(first)
    assert all(torch.equal(again[i]["obj_saliency"], before[i]) for i in range(len(again)))
    _prepare(demo_world, cache, split="train", limit=12, shard_size=4)  # finished: nothing to do
    assert len(calls) == 1


def test_prepare_refuses_other_parameters(demo_world, tmp_path):
    cache = _prepare(demo_world, tmp_path / "c", limit=2)
    with pytest.raises(ValueError, match=r"config.json.*t_a"):
        _prepare(demo_world, cache, limit=2, t_a=0.2)


def test_a_failed_prepare_does_not_block_the_corrected_rerun(demo_world, tmp_path, monkeypatch):
    """A prepare that failed before finishing any shard (here: the first shard raises) leaves
    ``config.json``; the rerun with corrected settings starts afresh instead of refusing. Once a shard
    is finished, other settings are refused as before (its work would be mixed in). Planted bug
    caught: any config difference refused ("was prepared with other parameters")."""
    cache = tmp_path / "c"

    def broken(task):
        raise RuntimeError("simulated failure in the first shard")

    monkeypatch.setattr(pseudo_labels, "_write_shard", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        _prepare(demo_world, cache, limit=2, t_a=0.5)
    monkeypatch.undo()
    assert (cache / "config.json").is_file() and not list((cache / "shards").glob("*/shard.json"))
    _prepare(demo_world, cache, limit=2)
    assert json.loads((cache / "config.json").read_text())["t_a"] == T_A
    assert pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES) is not None
    (cache / "manifest.json").unlink()  # unfinished again, but with a finished shard
    with pytest.raises(ValueError, match="other parameters"):
        _prepare(demo_world, cache, limit=2, t_a=0.5)


def test_truncated_or_inconsistent_cache_is_an_error(demo_world, tmp_path):
    cache = _prepare(demo_world, tmp_path / "c")
    target = cache / "shards/00000/obj_saliency.npy"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="obj_saliency.npy"):
        pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES)
    target.write_bytes(data)
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["shards"][0]["items"] += 1
    (cache / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="disagrees"):
        pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES)
    manifest["shards"][0]["items"] -= 1
    (cache / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES[:1])
    assert len(pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES, limit=1)) == 1


def test_bad_sources_name_the_file(demo_world, tmp_path):
    fix_json, image_dir, inst = _sources(demo_world)
    images = tmp_path / "images"
    shutil.copytree(image_dir, images)
    victim = sorted(images.iterdir())[0]
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=victim.name):
        pseudo_labels.prepare(fix_json, images, inst, tmp_path / "c1", size=SIZE, t_a=T_A, progress=False)
    with pytest.raises(FileNotFoundError, match=victim.name):  # raised in a worker process, named here
        pseudo_labels.prepare(fix_json, images, inst, tmp_path / "c1w", size=SIZE, t_a=T_A, progress=False,
                              workers=2, shard_size=1)
    assert not (tmp_path / "c1w/manifest.json").exists()
    coco = json.loads(inst.read_text())
    coco["images"] = coco["images"][1:]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != victim_id(fix_json)]
    other = tmp_path / "instances.json"
    other.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=rf"instances.json: no COCO image with id {victim_id(fix_json)}"):
        pseudo_labels.prepare(fix_json, image_dir, other, tmp_path / "c2", size=SIZE, t_a=T_A, progress=False)
    coco = json.loads(inst.read_text())
    coco["annotations"][0]["category_id"] = 999
    other.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=r"instances.json: .*category ids \[999\]"):
        pseudo_labels.prepare(fix_json, image_dir, other, tmp_path / "c3", size=SIZE, t_a=T_A, progress=False)


def victim_id(fix_json: Path) -> int:
    return json.loads(fix_json.read_text())["images"][0]["id"]


def test_workers_give_the_same_cache(demo_world, tmp_path):
    one = _prepare(demo_world, tmp_path / "one", shard_size=2)
    two = _prepare(demo_world, tmp_path / "two", shard_size=2, workers=2)
    for path in sorted((one / "shards").rglob("*.npy")):
        assert np.array_equal(np.load(path), np.load(two / path.relative_to(one))), path


def test_cli_prepare(demo_world, tmp_path, capsys):
    from hsi_core import cli

    status = cli.main(["prepare", *map(str, _sources(demo_world)), str(tmp_path / "c"), "--size", "16",
                       "--t-a", str(T_A), "--reading", "attended_share", "--no-progress"])
    assert status == 0 and "pseudo-labelled objects" in capsys.readouterr().out
    assert json.loads((tmp_path / "c/manifest.json").read_text())["config"]["reading"] == "attended_share"
    assert cli.main(["prepare", *map(str, _sources(demo_world)), str(tmp_path / "c"), "--size", "17"]) == 2


@pytest.mark.gpu_check
def test_prepare_and_load_on_device(demo_world, tmp_path, device):
    """A DataLoader over the cache feeds the device; compact items (uint8 image, float16 maps) converted
    there by ``batch_to_device`` equal the float items."""
    cache = _prepare(demo_world, tmp_path / "c", max_objects=2)
    batches = {}
    for compact in (False, True):
        ds = pseudo_labels.PseudoLabelCache(cache, vocabulary=datasets.HSB_CLASSES, compact=compact)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, pin_memory=device == "cuda")
        batches[compact] = pseudo_labels.batch_to_device(next(iter(loader)), device)
    on = batches[False]
    assert on["obj_saliency"].shape == (2, 2, SIZE, SIZE) and on["image"].device.type == torch.device(device).type
    assert bool(on["valid"][:, 0].all()) and bool((on["obj_fixations"] & ~on["fixations"][:, None]).sum() == 0)
    assert batches[True]["image"].dtype == torch.float32 and batches[True]["obj_saliency"].dtype == torch.float32
    for key, value in on.items():
        assert torch.equal(batches[True][key], value), key
