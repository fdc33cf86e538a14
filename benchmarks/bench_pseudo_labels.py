"""HSI pretraining's data pipeline (issue #11): HSI Algorithm 1 once into a cache (``pseudo_labels.prepare``)
and items read from it (``PseudoLabelCache``), against computing HSI Algorithm 1 for every item as the
training dataset did before issue #11 (``SaliconPseudoLabels.__getitem__``: COCO ``annToMask`` and
sigma = 19 blurs at 640x480 per item), in one run on one machine.

Data: the demo generator's SALICON at paper size (640x480 scenes, ``--workers-per-image`` viewers with
about ``--points`` points each, COCO polygons); ``--images`` train images. HSI Algorithm 1 at ``--t-a``
(0.01: the demo's objects cover 1-7 % of an image; the paper's 0.1 on real COCO objects).

Rates are per CPU core: every reader runs in one process with one torch thread. ``items/s/core from the
cache`` is a DataLoader with ``num_workers=0`` (read + collate into batches of ``--batch-size``), the
work one DataLoader worker does; ``_compact`` the same with ``PseudoLabelCache(compact=True)`` (uint8
image, float16 maps, converted on the device by ``pseudo_labels.batch_to_device``). Goal (issue #11): >= 150 items/s per core, so that 16 workers feed
twice an H100's training step rate (1,199 img/s in bf16).

    python benchmarks/bench_pseudo_labels.py [--images 48] [--size 224] [--prepare-workers 2]

Writes ``benchmarks/results/pseudo_labels.json`` (atomic) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hsi_core import datasets, demo, maps, pseudo_labels
from hsi_core.fixations import saliency_map
from hsi_core.io import atomic_write_json, read_image


def on_the_fly_item(image: datasets.SaliconImage, image_dir: Path, inst: Path, coco: Any, size: int,
                    max_objects: int, t_a: float, vocabulary: list[str]) -> dict[str, Any]:
    """One item as the training dataset computed it before the cache (the pre-#11 code path: pycocotools
    masks, HSI Algorithm 1's tests, ``fixations.saliency_map`` blurs at native size, then resizing)."""
    fix = image.fixation_map()
    masks = datasets.load_coco_masks(inst, image.image_id, coco=coco)
    names, stack = pseudo_labels.merge_by_category(masks, fix.shape)
    area, ratio = pseudo_labels.object_ratios(fix, stack)
    keep = np.nonzero((area >= t_a) & (ratio >= pseudo_labels.T_R) & (ratio > 0))[0]
    keep = keep[np.argsort(-ratio[keep], kind="stable")][:max_objects]
    pseudo_fix = stack[keep] & fix[None]
    blurred = saliency_map(torch.from_numpy(pseudo_fix.astype(np.float32)), pseudo_labels.SIGMA)
    s = (size, size)
    obj_sal = torch.zeros(max_objects, size, size)
    obj_fix = torch.zeros(max_objects, size, size, dtype=torch.bool)
    for k in range(len(keep)):
        obj_sal[k] = maps.resize(blurred[k].numpy(), s)
        obj_fix[k] = datasets.resize_fixations(pseudo_fix[k], s)
    labels = torch.zeros(max_objects, dtype=torch.long)
    labels[: len(keep)] = torch.tensor([vocabulary.index(names[k]) for k in keep], dtype=torch.long)
    return {"image": datasets.to_tensor_image(read_image(image_dir / image.file_name), s),
            "saliency": maps.resize(saliency_map(fix.astype(np.float32), pseudo_labels.SIGMA), s),
            "fixations": datasets.resize_fixations(fix, s), "obj_saliency": obj_sal, "obj_fixations": obj_fix,
            "obj_labels": labels}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48, help="paper-size SALICON train images to generate")
    parser.add_argument("--workers-per-image", type=int, default=demo.SALICON_PAPER_SIZE["n_salicon_workers"])
    parser.add_argument("--points", type=int, default=demo.SALICON_PAPER_SIZE["n_salicon_points"])
    parser.add_argument("--size", type=int, default=224, help="training resolution")
    parser.add_argument("--max-objects", type=int, default=4)
    parser.add_argument("--t-a", type=float, default=0.01)
    parser.add_argument("--prepare-workers", type=int, default=2, help="processes for the parallel prepare run")
    parser.add_argument("--on-the-fly-items", type=int, default=8, help="items timed on the pre-#11 path")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the cache")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pseudo_labels.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    vocabulary = list(datasets.HSB_CLASSES)
    result: dict[str, Any] = {"device": "cpu", "torch_threads": 1, "cpu_count": os.cpu_count(),
                              "size": args.size, "max_objects": args.max_objects, "t_a": args.t_a}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "world"
        t0 = time.perf_counter()
        demo.generate_demo(root, n_salicon=args.images, n_salicon_workers=args.workers_per_image,
                           n_salicon_points=args.points, n_hsb_per_class=5, n_hsb_viewers=1, n_scan_images=1,
                           n_viewers=2)
        result["generate_s"] = time.perf_counter() - t0
        fix_json = root / "salicon/annotations/fixations_train2014.json"
        image_dir, inst = root / "salicon/images/train", root / "coco/annotations/instances_train2014.json"
        raw = json.loads(fix_json.read_text())
        result["data"] = {"images": len(raw["images"]), "viewers_per_image": len(raw["annotations"]) / len(raw["images"]),
                          "points_per_viewer": float(np.mean([len(a["fixations"]) for a in raw["annotations"]])),
                          "fixation_json_mb": fix_json.stat().st_size / 2**20, "resolution": "640x480"}
        common = dict(size=args.size, max_objects=args.max_objects, t_a=args.t_a, progress=False)

        # 1. prepare: one process, then --prepare-workers processes
        t0 = time.perf_counter()
        cache = pseudo_labels.prepare(fix_json, image_dir, inst, Path(tmp) / "cache1", workers=1, **common)
        serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        pseudo_labels.prepare(fix_json, image_dir, inst, Path(tmp) / "cacheN", workers=args.prepare_workers,
                              shard_size=max(1, args.images // (2 * args.prepare_workers)), **common)
        parallel = time.perf_counter() - t0
        manifest = json.loads((cache / "manifest.json").read_text())
        size_mb = sum(p.stat().st_size for p in (cache / "shards").rglob("*.npy")) / 2**20
        result["prepare"] = {
            "images_per_s_per_core": args.images / serial,
            f"images_per_s_{args.prepare_workers}_workers": args.images / parallel,
            "kept_images": manifest["items"], "objects": manifest["objects"],
            "cache_mb_per_kept_image": size_mb / max(manifest["items"], 1),
            "note": "includes reading and streaming the json, the COCO index and process start-up"}

        # 2. reading the cache: items/s on one core, single items and DataLoader batches (read + collate)
        ds = pseudo_labels.PseudoLabelCache(cache, vocabulary=vocabulary)
        order = np.random.default_rng(0).permutation(len(ds))
        ds[0]
        t0 = time.perf_counter()
        for _ in range(args.epochs):
            for i in order:
                ds[int(i)]
        items = args.epochs * len(ds) / (time.perf_counter() - t0)
        rates = {}
        for compact in (False, True):
            source = pseudo_labels.PseudoLabelCache(cache, vocabulary=vocabulary, compact=compact)
            loader = torch.utils.data.DataLoader(source, batch_size=args.batch_size, shuffle=True, num_workers=0)
            t0 = time.perf_counter()
            for _ in range(args.epochs):
                for _batch in loader:
                    pass
            rates[compact] = args.epochs * len(ds) / (time.perf_counter() - t0)
        batched = rates[False]

        # 3. the pre-#11 path: HSI Algorithm 1 per item
        coco = datasets.load_coco(inst)
        images = list(datasets.load_salicon_fixations(fix_json).values())
        image_ids = [ds.image_id(i) for i in range(min(args.on_the_fly_items, len(ds)))]
        by_id = {im.image_id: im for im in images}
        t0 = time.perf_counter()
        for image_id in image_ids:
            on_the_fly_item(by_id[image_id], image_dir, inst, coco, args.size, args.max_objects, args.t_a, vocabulary)
        fly = len(image_ids) / (time.perf_counter() - t0)

    result["read"] = {"items_per_s_per_core_cache_dataloader": batched, "items_per_s_per_core_cache_getitem": items,
                      "items_per_s_per_core_cache_dataloader_compact": rates[True],
                      "meets_goal_compact": bool(rates[True] >= 150),
                      "items_per_s_per_core_on_the_fly": fly, "speedup_cache_vs_on_the_fly": batched / fly,
                      "goal_items_per_s_per_core": 150, "meets_goal": bool(batched >= 150)}
    result["estimate_16_cores"] = {
        "cache_items_per_s": 16 * batched, "h100_train_step_img_per_s_bf16": 1199,
        "prepare_salicon_train_10000_images_min": 10000 / (16 * result["prepare"]["images_per_s_per_core"]) / 60}
    result["load_average_1min_at_end"] = os.getloadavg()[0]  # a shared machine slows every rate alike
    result["command"] = "python benchmarks/bench_pseudo_labels.py " + " ".join(argv or [])
    atomic_write_json(args.out, result, indent=1)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
