"""HSI Algorithm 1: per-object pseudo fixation and saliency maps from passive-viewing fixations.

SALICON gives one fixation map per image (free viewing); HSI pretraining needs a map *conditioned
on each object*. HSI Algorithm 1 keeps, for each COCO object, the fixations that fall on its mask, if the
object is large enough and holds enough of the fixations, and blurs them into a saliency map.

For training, :func:`prepare` (``hsi prepare``) runs HSI Algorithm 1 once over a SALICON split, in
parallel and resumably, into an on-disk cache at training resolution, and :class:`PseudoLabelCache`
reads it without recomputation. The area test's two readings are a switch (``reading=``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from hsi_core.fixations import gaussian_kernel, saliency_map

T_A = 0.1    # threshold on the object's share of the image area (paper: "ratio of area size")
T_R = 0.05   # threshold on the object's share of the fixations (paper: "ratio of fixations")
SIGMA = 19   # Gaussian sigma in pixels, as SALICON's maps (640x480 images)
#: The two readings of HSI Algorithm 1's area test (see :func:`algorithm1`).
READINGS = ("area_share", "attended_share")


@dataclass
class PseudoLabel:
    """One object's pseudo-label: ``fixation_map`` bool ``(H, W)`` and ``saliency_map`` float ``(H, W)`` (max 1)."""

    category: str
    fixation_map: np.ndarray
    saliency_map: np.ndarray
    area_ratio: float
    fixation_ratio: float
    attended_share: float = float("nan")  #: mean free-viewing saliency inside the mask (when computed)


@functools.lru_cache(maxsize=8)
def _band_matrix(n: int, sigma: float, truncate: float) -> torch.Tensor:
    """``(n, n)`` matrix of the 1-D Gaussian of :func:`hsi_core.fixations.gaussian_blur` with zero padding."""
    kernel = gaussian_kernel(sigma, truncate, torch.float32, "cpu")
    radius = (kernel.numel() - 1) // 2
    d = torch.arange(n)[:, None] - torch.arange(n)[None, :]
    near = d.abs() <= radius
    band = torch.zeros(n, n)
    band[near] = kernel[d[near] + radius]
    return band


def blurred_maps(maps: np.ndarray, sigma: float = SIGMA, *, truncate: float = 4.0) -> np.ndarray:
    """Gaussian saliency maps (max 1) of ``(B, H, W)`` binary fixation maps: the same zero-padded
    separable Gaussian as :func:`hsi_core.fixations.saliency_map`, computed as two matrix products
    restricted to each map's fixated rows and columns (about 4x faster at 640x480, sigma 19)."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"blurred_maps: expected (B, H, W), got shape {maps.shape}")
    b, h, w = maps.shape
    ky, kx = _band_matrix(h, float(sigma), truncate), _band_matrix(w, float(sigma), truncate)
    out = np.empty((b, h, w), dtype=np.float32)
    for i in range(b):
        rows, cols = np.flatnonzero(maps[i].any(1)), np.flatnonzero(maps[i].any(0))
        if rows.size == 0:
            raise ValueError(f"blurred_maps: map {i} is empty; its saliency map is undefined")
        f = torch.from_numpy(np.ascontiguousarray(maps[i][np.ix_(rows, cols)], dtype=np.float32))
        q = ky[:, torch.from_numpy(rows)] @ f @ kx[:, torch.from_numpy(cols)].T
        out[i] = (q / q.max()).numpy()
    return out


def _as_pairs(masks: Sequence[Any]) -> list[tuple[str, np.ndarray]]:
    """Accept ``(category, mask)`` pairs or objects with ``.category`` and ``.mask`` (``datasets.ObjectMask``)."""
    pairs = []
    for m in masks:
        if hasattr(m, "category") and hasattr(m, "mask"):
            pairs.append((str(m.category), np.asarray(m.mask)))
        else:
            category, mask = m
            pairs.append((str(category), np.asarray(mask)))
    return pairs


def merge_by_category(masks: Sequence[Any], shape: tuple[int, int]) -> tuple[list[str], np.ndarray]:
    """Union of the instance masks of each category, in first-seen order -> ``(names, (N, H, W) bool)``."""
    names: list[str] = []
    merged: dict[str, np.ndarray] = {}
    for category, mask in _as_pairs(masks):
        if mask.shape != shape:
            raise ValueError(f"algorithm1: mask of '{category}' has shape {mask.shape}, the fixation map {shape}")
        if category not in merged:
            names.append(category)
            merged[category] = np.zeros(shape, dtype=bool)
        merged[category] |= mask.astype(bool)
    stack = np.stack([merged[n] for n in names]) if names else np.zeros((0, *shape), dtype=bool)
    return names, stack


def object_ratios(fixation_map: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HSI Algorithm 1's two tests for ``(N, H, W)`` masks, vectorised: ``(area / image area, fixations on
    the object / all fixations)``, each ``(N,)``."""
    fix = np.asarray(fixation_map, dtype=bool)
    flat = masks.reshape(masks.shape[0], -1)
    area = flat.sum(1) / fix.size
    on_object = (flat & fix.reshape(1, -1)).sum(1)
    return area, on_object / max(int(fix.sum()), 1)


def attended_shares(saliency: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean free-viewing saliency (max-normalised map) inside each of ``(N, H, W)`` masks, ``(N,)``:
    the "attended share" reading of HSI Algorithm 1's area test. An empty mask scores 0."""
    flat = masks.reshape(masks.shape[0], -1).astype(np.float32)
    area = flat.sum(1)
    return (flat @ np.asarray(saliency, dtype=np.float32).reshape(-1)) / np.maximum(area, 1.0)


def algorithm1(fixation_map: np.ndarray, masks: Sequence[Any], t_a: float = T_A, t_r: float = T_R,
               sigma: float = SIGMA, *, reading: str = "area_share",
               saliency: np.ndarray | None = None) -> list[PseudoLabel]:
    """HSI Algorithm 1: pseudo fixation map ``f~_n = m_n . f_pv`` and saliency map ``q~_n = Gauss(f~_n, sigma)``
    for every object that passes both tests.

    ``masks`` are ``(category, bool mask)`` pairs or ``datasets.ObjectMask``; instances of one category are
    merged into one object first (the text label names a category, not an instance).

    Reading of the tests. As printed, the first test ``(1/gamma) sum(m_n) >= T_a`` with ``gamma`` the
    area of ``m_n`` is always 1. ``reading="area_share"`` (default) reads it as the object's share of
    the **image** area, ``sum(m_n) / (H W) >= T_a``; ``reading="attended_share"`` as the attended
    share of the object, the mean of the free-viewing saliency map ``q_pv`` (max 1; ``saliency``, or
    ``Gauss(f_pv, sigma)`` computed here) inside ``m_n``, ``>= T_a``. The second test,
    ``(1/eta) sum(f~_n) >= T_r`` with ``eta = sum(f_pv)``, is the share of the image's fixations that
    land on the object. ``sigma`` is in pixels of the map.
    """
    if reading not in READINGS:
        raise ValueError(f"algorithm1: reading must be one of {READINGS}, got {reading!r}")
    fix = np.asarray(fixation_map)
    if fix.ndim != 2:
        raise ValueError(f"algorithm1: the fixation map must be (H, W), got shape {fix.shape}")
    fix = fix > 0
    if not fix.any():
        raise ValueError("algorithm1: the fixation map is empty")
    if not (0 <= t_a <= 1 and 0 <= t_r <= 1):
        raise ValueError(f"algorithm1: thresholds must lie in [0, 1], got t_a={t_a}, t_r={t_r}")
    names, stack = merge_by_category(masks, fix.shape)
    if not names:
        return []
    area, ratio = object_ratios(fix, stack)
    attended = np.full(len(names), np.nan)
    if reading == "attended_share":
        if saliency is None:
            saliency = blurred_maps(fix[None], sigma)[0]
        if np.shape(saliency) != fix.shape:
            raise ValueError(f"algorithm1: saliency has shape {np.shape(saliency)}, the fixation map {fix.shape}")
        attended = attended_shares(saliency, stack)
    first = area if reading == "area_share" else attended
    keep = np.nonzero((first >= t_a) & (ratio >= t_r) & (ratio > 0))[0]
    if keep.size == 0:
        return []
    pseudo_fix = stack[keep] & fix[None]
    blurred = blurred_maps(pseudo_fix, sigma)
    return [PseudoLabel(names[k], pseudo_fix[i], blurred[i], float(area[k]), float(ratio[k]), float(attended[k]))
            for i, k in enumerate(keep)]


def stack_pseudo_labels(labels: Sequence[PseudoLabel], max_objects: int | None = None) -> dict[str, Any]:
    """Pad one image's pseudo-labels into tensors for the batched losses: ``saliency``/``fixations``
    ``(N, H, W)``, ``valid (N,)`` and the ``categories``; ``max_objects`` fixes ``N`` (extra objects dropped,
    largest fixation share first)."""
    order = sorted(range(len(labels)), key=lambda i: -labels[i].fixation_ratio)
    if max_objects is not None:
        order = order[:max_objects]
    if not order:
        raise ValueError("stack_pseudo_labels: no pseudo-labels to stack")
    n = max_objects if max_objects is not None else len(order)
    h, w = labels[order[0]].fixation_map.shape
    sal = torch.zeros(n, h, w)
    fix = torch.zeros(n, h, w, dtype=torch.bool)
    valid = torch.zeros(n, dtype=torch.bool)
    for slot, i in enumerate(order):
        sal[slot] = torch.from_numpy(labels[i].saliency_map)
        fix[slot] = torch.from_numpy(labels[i].fixation_map)
        valid[slot] = True
    return {"saliency": sal, "fixations": fix, "valid": valid, "categories": [labels[i].category for i in order]}


# ----------------------------------------------------------------------------- prepare once, read many
# HSI Algorithm 1 runs once over a SALICON split (``prepare``) and training reads its output from an
# on-disk cache (``PseudoLabelCache``) instead of recomputing COCO masks and sigma=19 blurs at
# 640x480 for every item of every epoch.
#
# Layout of ``cache_dir``:
#   config.json          the parameters and the source files (written first; a re-run must match it)
#   shards/NNNNN/        one folder per ``shard_size`` input images, renamed into place when whole:
#     image_ids.npy      int64 (n,)           SALICON/COCO image ids of the kept images
#     images.npy         uint8 (n, 3, S, S)   the image at training resolution (bilinear, rounded)
#     saliency.npy       float16 (n, S, S)    q_pv: fixations blurred with sigma px at native size, resized
#     fixations.npy      uint8 (n, S, ceil(S/8))  f_pv moved to the S x S grid, bit-packed along x
#     obj_start.npy      int64 (n + 1,)       image i owns objects obj_start[i]:obj_start[i + 1]
#     obj_saliency.npy   float16 (M, S, S)    q~ of every kept object (largest fixation share first)
#     obj_fixations.npy  uint8 (M, S, ceil(S/8))  f~, bit-packed
#     obj_category.npy   int64 (M,)           COCO category ids
#     shard.json         counts, skipped images (no object passes), written last inside the shard
#   manifest.json        written last: the config, every shard's counts, the category names

CACHE_VERSION = 1
_SHARD_FILES = ("image_ids", "images", "saliency", "fixations", "obj_start", "obj_saliency",
                "obj_fixations", "obj_category")


def _file_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size}


def _ann_mask(ann: dict[str, Any], height: int, width: int, where: str) -> np.ndarray:
    """One COCO annotation's mask (polygons, RLE or uncompressed RLE), as pycocotools' ``annToMask``."""
    from pycocotools import mask as mask_utils

    try:
        seg = ann["segmentation"]
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = seg
        return mask_utils.decode(rle).astype(bool)
    except Exception as error:  # pycocotools raises several types for malformed segmentations
        raise ValueError(f"{where}: annotation {ann.get('id')} has a malformed segmentation ({error})") from error


def _resize_bits(maps: np.ndarray, size: int) -> np.ndarray:
    """``(N, H, W)`` binary maps -> ``(N, S, ceil(S/8))`` bit-packed maps on the S x S grid, each
    fixated pixel moved to its cell (none lost; as ``datasets.resize_fixations``)."""
    n, h, w = maps.shape
    idx, rows, cols = np.nonzero(maps)
    out = np.zeros((n, size, size), dtype=bool)
    out[idx, (rows * size) // h, (cols * size) // w] = True
    return np.packbits(out, axis=-1)


def _bilinear(maps: np.ndarray, size: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[:, None]
    if tuple(t.shape[-2:]) == (size, size):
        return t[:, 0]
    return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def prepare_image(image_path: Path, height: int, width: int, pixels: np.ndarray, anns: Sequence[dict[str, Any]],
                  categories: dict[int, str], *, size: int, max_objects: int | None, t_a: float, t_r: float,
                  sigma: float, reading: str, where: str = "") -> dict[str, np.ndarray] | None:
    """HSI Algorithm 1 for one SALICON image, resized for training: ``None`` when no object passes, else
    the arrays one cache item stores (see the layout above). ``pixels``: flat fixated pixel indices."""
    from hsi_core.io import read_image

    if not image_path.is_file():
        raise FileNotFoundError(f"SALICON image not found: {image_path}")
    rgb = read_image(image_path)
    if rgb.shape[:2] != (height, width):
        raise ValueError(f"{image_path}: the image is {rgb.shape[1]}x{rgb.shape[0]}, its fixation file says "
                         f"{width}x{height}")
    fix = np.zeros(height * width, dtype=bool)
    fix[pixels] = True
    fix = fix.reshape(height, width)
    unknown = sorted({a.get("category_id") for a in anns} - set(categories), key=str)
    if unknown:
        raise ValueError(f"{where}: annotations of {image_path.name} use category ids {unknown} that the "
                         "file does not define")
    masks = [(categories[a["category_id"]], _ann_mask(a, height, width, where)) for a in anns]
    names, stack = merge_by_category(masks, (height, width))
    if not names:
        return None
    free = blurred_maps(fix[None], sigma)[0]
    labels = algorithm1(fix, list(zip(names, stack)), t_a, t_r, sigma, reading=reading, saliency=free)
    if not labels:
        return None
    labels = sorted(labels, key=lambda p: -p.fixation_ratio)[:max_objects]
    ids = {name: cid for cid, name in categories.items()}
    img = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float()[None]
    if rgb.shape[:2] != (size, size):
        img = torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
    return {
        "images": img[0].round().clamp(0, 255).to(torch.uint8).numpy(),
        "saliency": _bilinear(free[None], size)[0].numpy().astype(np.float16),
        "fixations": _resize_bits(fix[None], size)[0],
        "obj_saliency": _bilinear(np.stack([p.saliency_map for p in labels]), size).numpy().astype(np.float16),
        "obj_fixations": _resize_bits(np.stack([p.fixation_map for p in labels]), size),
        "obj_category": np.array([ids[p.category] for p in labels], dtype=np.int64),
    }


def _write_shard(task: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`prepare_image` over one shard's images and move the shard into place atomically."""
    import json
    import os
    import shutil

    cfg, final = task["config"], Path(task["final"])
    size = cfg["size"]
    packed = (size + 7) // 8
    kept, skipped = [], []
    for rec in task["records"]:
        out = prepare_image(Path(cfg["image_dir"]) / rec["file_name"], rec["height"], rec["width"], rec["pixels"],
                            rec["anns"], task["categories"], size=size, max_objects=cfg["max_objects"],
                            t_a=cfg["t_a"], t_r=cfg["t_r"], sigma=cfg["sigma"], reading=cfg["reading"],
                            where=cfg["instances_json"]["path"])
        if out is None:
            skipped.append(rec["file_name"])
        else:
            kept.append((rec["image_id"], out))
    counts = [len(o["obj_category"]) for _, o in kept]
    arrays = {
        "image_ids": np.array([i for i, _ in kept], dtype=np.int64),
        "images": np.stack([o["images"] for _, o in kept]) if kept else np.zeros((0, 3, size, size), np.uint8),
        "saliency": np.stack([o["saliency"] for _, o in kept]) if kept else np.zeros((0, size, size), np.float16),
        "fixations": np.stack([o["fixations"] for _, o in kept]) if kept else np.zeros((0, size, packed), np.uint8),
        "obj_start": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "obj_saliency": (np.concatenate([o["obj_saliency"] for _, o in kept]) if kept
                         else np.zeros((0, size, size), np.float16)),
        "obj_fixations": (np.concatenate([o["obj_fixations"] for _, o in kept]) if kept
                          else np.zeros((0, size, packed), np.uint8)),
        "obj_category": (np.concatenate([o["obj_category"] for _, o in kept]) if kept else np.zeros(0, np.int64)),
    }
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, array in arrays.items():
        np.save(tmp / f"{name}.npy", array)
    meta = {"items": len(kept), "objects": int(sum(counts)), "max_objects": max(counts, default=0),
            "inputs": len(task["records"]), "skipped": skipped,
            "shapes": {name: list(a.shape) for name, a in arrays.items()}}
    (tmp / "shard.json").write_text(json.dumps(meta))
    os.replace(tmp, final)  # the shard appears whole or not at all
    return {"name": final.name, **meta}


def _init_worker() -> None:
    torch.set_num_threads(1)


def _config(fixations_json: Path, image_dir: Path, instances_json: Path, **params: Any) -> dict[str, Any]:
    return {"version": CACHE_VERSION, "fixations_json": _file_identity(fixations_json),
            "instances_json": _file_identity(instances_json), "image_dir": str(image_dir.resolve()), **params}


def prepare(fixations_json: str | Path, image_dir: str | Path, instances_json: str | Path, cache_dir: str | Path, *,
            size: int, max_objects: int | None = None, t_a: float = T_A, t_r: float = T_R, sigma: float = SIGMA,
            reading: str = "area_share", workers: int = 1, limit: int | None = None, progress: bool = True,
            shard_size: int = 64) -> Path:
    """Run HSI Algorithm 1 once over a SALICON split and store what HSI pretraining reads (HSI Eq. 8-11) in
    ``cache_dir`` at training resolution ``size`` x ``size``; returns ``cache_dir``.

    Per kept image: the image (uint8), the passive-viewing saliency and fixation maps, and up to
    ``max_objects`` objects' pseudo saliency and fixation maps with COCO category ids (largest
    fixation share first). Images where no object passes are recorded as skipped. HSI Algorithm 1 runs
    at native resolution (sigma in pixels of the 640x480 image, as the paper); maps are then resized.

    The fixation json is streamed (:func:`hsi_core.datasets.salicon.salicon_fixation_pixels`); the first
    ``limit`` images of it are used. Work is split into shards of ``shard_size`` images, run on
    ``workers`` processes, each shard written to a temporary folder and renamed into place, so a
    killed run resumes where it stopped (finished shards are skipped). ``manifest.json`` is written
    last; :class:`PseudoLabelCache` refuses a cache without it. A ``cache_dir`` prepared with other
    parameters or other source files raises ``ValueError`` (use another folder or delete it), unless
    that run failed before finishing a shard (a wrong path or argument): then it starts afresh.
    """
    import concurrent.futures as cf
    import json
    import multiprocessing
    import shutil

    from tqdm import tqdm

    from hsi_core import datasets
    from hsi_core.io import atomic_write_json

    fixations_json, image_dir, instances_json = Path(fixations_json), Path(image_dir), Path(instances_json)
    cache_dir = Path(cache_dir)
    if reading not in READINGS:
        raise ValueError(f"prepare: reading must be one of {READINGS}, got {reading!r}")
    if size < 1 or workers < 1 or shard_size < 1 or (max_objects is not None and max_objects < 1):
        raise ValueError(f"prepare: size, workers, shard_size and max_objects must be >= 1 "
                         f"(got {size}, {workers}, {shard_size}, {max_objects})")
    for path, what in ((fixations_json, "SALICON fixation file"), (instances_json, "COCO instances file"),
                       (image_dir, "SALICON image folder")):
        if not path.exists():
            raise FileNotFoundError(f"{what} not found: {path}")
    config = _config(fixations_json, image_dir, instances_json, size=int(size), max_objects=max_objects,
                     t_a=float(t_a), t_r=float(t_r), sigma=float(sigma), reading=reading, limit=limit,
                     shard_size=int(shard_size))
    config_path, manifest_path = cache_dir / "config.json", cache_dir / "manifest.json"
    if config_path.is_file():
        try:
            old = json.loads(config_path.read_text())
        except ValueError as error:
            raise ValueError(f"{config_path}: broken json ({error}); delete {cache_dir} and prepare again") from error
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        finished_shards = list((cache_dir / "shards").glob("*/shard.json"))
        if diff and (manifest_path.is_file() or finished_shards):
            raise ValueError(f"{config_path}: {cache_dir} was prepared with other parameters or sources "
                             f"({', '.join(diff)}); use another cache_dir or delete it")
        if diff:  # a run that failed before finishing any shard: nothing to keep, start with these settings
            atomic_write_json(config_path, config)
        elif manifest_path.is_file():
            return cache_dir
    else:
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(config_path, config)
    shards_dir = cache_dir / "shards"
    shards_dir.mkdir(exist_ok=True)
    for stale in shards_dir.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)

    coco = datasets.load_coco(instances_json)
    categories = {int(cid): str(c["name"]) for cid, c in coco.cats.items()}
    images, pixels = datasets.salicon_fixation_pixels(fixations_json)
    ids = list(images)[:limit]
    records = []
    for image_id in ids:
        im = images[image_id]
        if image_id not in coco.imgs:
            raise ValueError(f"{instances_json}: no COCO image with id {image_id} (SALICON image {im.file_name} "
                             f"of {fixations_json})")
        records.append({"image_id": image_id, "file_name": im.file_name, "height": im.height, "width": im.width,
                        "pixels": pixels[image_id], "anns": coco.imgToAnns.get(image_id, [])})
    del pixels
    tasks = []
    for k in range(0, len(records), shard_size):
        final = shards_dir / f"{k // shard_size:05d}"
        if (final / "shard.json").is_file():
            continue
        tasks.append({"config": config, "final": str(final), "records": records[k:k + shard_size],
                      "categories": categories})
    done_before = len(records) - sum(len(t["records"]) for t in tasks)
    bar = tqdm(total=len(records), initial=done_before, desc="HSI Algorithm 1", unit="img", disable=not progress)
    try:
        if workers == 1:
            for task in tasks:
                _write_shard(task)
                bar.update(len(task["records"]))
        else:
            # fork starts workers in milliseconds (as DataLoader workers); elsewhere the platform default
            fork = "fork" in multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if fork else None)
            with cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
                futures = {pool.submit(_write_shard, t): len(t["records"]) for t in tasks}
                try:
                    for future in cf.as_completed(futures):
                        future.result()
                        bar.update(futures[future])
                except BaseException:  # an error (or Ctrl-C): stop at once; finished shards stay
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
    _write_manifest(cache_dir, config, categories, n_shards=(len(records) + shard_size - 1) // shard_size)
    return cache_dir


def _write_manifest(cache_dir: Path, config: dict[str, Any], categories: dict[int, str], n_shards: int) -> None:
    import json

    from hsi_core.io import atomic_write_json

    shards = []
    for k in range(n_shards):
        meta_path = cache_dir / "shards" / f"{k:05d}" / "shard.json"
        if not meta_path.is_file():
            raise ValueError(f"{meta_path}: missing; the shard was not written (run prepare again)")
        meta = json.loads(meta_path.read_text())
        shards.append({"name": f"{k:05d}", "items": meta["items"], "objects": meta["objects"],
                       "max_objects": meta["max_objects"], "skipped": meta["skipped"], "shapes": meta["shapes"]})
    atomic_write_json(cache_dir / "manifest.json", {
        "config": config, "categories": {str(k): v for k, v in categories.items()}, "shards": shards,
        "items": sum(s["items"] for s in shards), "objects": sum(s["objects"] for s in shards),
        "skipped": [name for s in shards for name in s["skipped"]],
        "max_objects_found": max((s["max_objects"] for s in shards), default=0)})


def _tensor(view: np.ndarray) -> torch.Tensor:
    """A writable torch copy of a (read-only, memory-mapped) array slice."""
    return torch.from_numpy(np.array(view))


class PseudoLabelCache(torch.utils.data.Dataset):
    """The output of :func:`prepare`, read without recomputation (memory-mapped ``.npy`` shards).

    Item (the keys HSI pretraining reads, HSI Eq. 8-11): ``image (3, S, S)`` float in [0, 1];
    ``saliency (S, S)`` (``q_pv``) and ``fixations (S, S)`` bool (``f_pv``); ``obj_saliency``,
    ``obj_fixations (N, S, S)`` (``q~``, ``f~``), ``valid (N,)`` bool and ``obj_labels (N,)`` long
    (indices into ``vocabulary``; padding slots hold 0 and ``valid`` False); ``index``.
    ``N`` is the ``max_objects`` given to :func:`prepare`, else the most objects any image kept.
    ``limit`` keeps the first ``limit`` items. ``skipped`` lists the images with no pseudo-label.
    ``compact=True`` returns the stored dtypes instead (``image`` uint8 0-255, the saliency maps
    float16: 2.4x fewer bytes per item through collation, pinning and the host-to-device copy);
    :func:`batch_to_device` then converts a batch on the device.

    A missing or incomplete cache raises ``FileNotFoundError``; a truncated shard, a shard that
    disagrees with the manifest, or a category missing from ``vocabulary`` raises ``ValueError``.
    """

    def __init__(self, cache_dir: str | Path, *, vocabulary: Sequence[str], limit: int | None = None,
                 compact: bool = False) -> None:
        import json

        self.cache_dir, self.compact = Path(cache_dir), bool(compact)
        manifest_path = self.cache_dir / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{manifest_path}: no manifest, so {self.cache_dir} is not a finished "
                                    "pseudo-label cache; run `hsi prepare` (pseudo_labels.prepare) first")
        try:
            manifest = json.loads(manifest_path.read_text())
            self.config, shards = manifest["config"], manifest["shards"]
            categories = {int(k): v for k, v in manifest["categories"].items()}
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{manifest_path}: broken manifest ({error}); delete the cache and prepare again") from error
        if self.config.get("version") != CACHE_VERSION:
            raise ValueError(f"{manifest_path}: cache version {self.config.get('version')}, this code reads "
                             f"{CACHE_VERSION}; prepare again")
        self.vocabulary = list(vocabulary)
        self.size = int(self.config["size"])
        self.max_objects = int(self.config["max_objects"] or manifest["max_objects_found"] or 1)
        self.skipped = list(manifest["skipped"])
        index = {name: i for i, name in enumerate(self.vocabulary)}
        self._names = [s["name"] for s in shards]
        self._arrays: dict[int, dict[str, np.ndarray]] = {}
        used: set[int] = set()
        for k, shard in enumerate(shards):
            arrays = self._open(k, shard["shapes"])
            if len(arrays["image_ids"]) != shard["items"] or len(arrays["obj_category"]) != shard["objects"]:
                raise ValueError(f"{self._shard_dir(k)}: the shard disagrees with {manifest_path} "
                                 f"({len(arrays['image_ids'])} items, manifest {shard['items']})")
            used |= set(np.unique(arrays["obj_category"]).tolist())
        missing = sorted({categories.get(c, f"id {c}") for c in used} - set(index))
        if missing:
            raise ValueError(f"{manifest_path}: categories {missing} are not in the vocabulary")
        self._label = np.zeros(max(categories, default=0) + 1, dtype=np.int64)
        for cid, name in categories.items():
            self._label[cid] = index.get(name, 0)
        counts = np.array([s["items"] for s in shards], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        total = int(self._offsets[-1])
        self._len = total if limit is None else min(int(limit), total)
        self._shapes = [s["shapes"] for s in shards]
        if self._len == 0:
            raise ValueError(f"{manifest_path}: the cache holds no image with a pseudo-label")

    def _shard_dir(self, k: int) -> Path:
        return self.cache_dir / "shards" / self._names[k]

    def _open(self, k: int, shapes: dict[str, list[int]]) -> dict[str, np.ndarray]:
        arrays = {}
        for name in _SHARD_FILES:
            path = self._shard_dir(k) / f"{name}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing from the pseudo-label cache; prepare again")
            try:
                arrays[name] = np.load(path, mmap_mode="r")
            except (ValueError, OSError, EOFError) as error:
                raise ValueError(f"{path}: truncated or corrupt cache file ({error}); prepare again") from error
            if list(arrays[name].shape) != list(shapes[name]):
                raise ValueError(f"{path}: shape {list(arrays[name].shape)}, the manifest says {shapes[name]}")
        self._arrays[k] = arrays
        return arrays

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers re-map the files themselves
        return {**self.__dict__, "_arrays": {}}

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self._len:
            raise IndexError(f"PseudoLabelCache: index {i} out of range ({self._len} items)")
        k = int(np.searchsorted(self._offsets, i, side="right") - 1)
        j = i - int(self._offsets[k])
        a = self._arrays.get(k) or self._open(k, self._shapes[k])
        s, n = self.size, self.max_objects
        start, stop = int(a["obj_start"][j]), int(a["obj_start"][j + 1])
        m = min(stop - start, n)
        obj_sal = torch.zeros(n, s, s, dtype=torch.float16 if self.compact else torch.float32)
        obj_fix = torch.zeros(n, s, s, dtype=torch.bool)
        obj_sal[:m] = _tensor(a["obj_saliency"][start:start + m])  # float16 -> float32 in torch (vectorised)
        obj_fix[:m] = torch.from_numpy(np.unpackbits(a["obj_fixations"][start:start + m], axis=-1, count=s).view(bool))
        labels = torch.zeros(n, dtype=torch.long)
        labels[:m] = torch.from_numpy(self._label[a["obj_category"][start:start + m]])
        valid = torch.zeros(n, dtype=torch.bool)
        valid[:m] = True
        image, saliency = _tensor(a["images"][j]), _tensor(a["saliency"][j])
        return {
            "image": image if self.compact else image.float().div_(255.0),
            "saliency": saliency if self.compact else saliency.float(),
            "fixations": torch.from_numpy(np.unpackbits(a["fixations"][j], axis=-1, count=s).view(bool)),
            "obj_saliency": obj_sal,
            "obj_fixations": obj_fix,
            "valid": valid,
            "obj_labels": labels,
            "index": i,
        }

    def image_id(self, i: int) -> int:
        """The SALICON (COCO) image id of item ``i``."""
        k = int(np.searchsorted(self._offsets, i, side="right") - 1)
        a = self._arrays.get(k) or self._open(k, self._shapes[k])
        return int(a["image_ids"][i - int(self._offsets[k])])


def batch_to_device(batch: dict[str, Any], device: str | torch.device, *, non_blocking: bool = True) -> dict[str, Any]:
    """Move a (collated) batch of :class:`PseudoLabelCache` items to ``device``; a ``compact`` batch's
    uint8 image becomes float in [0, 1] and its float16 maps float32 there (the same values as the
    non-compact items)."""
    out = {}
    for key, value in batch.items():
        if not isinstance(value, torch.Tensor):
            out[key] = value
            continue
        value = value.to(device, non_blocking=non_blocking)
        if value.dtype == torch.uint8:
            value = value.float().div_(255.0)
        elif value.dtype == torch.float16:
            value = value.float()
        out[key] = value
    return out


# ----------------------------------------------------------------------------- command line
def add_prepare_parser(sub: Any) -> None:
    """``hsi prepare FIXATIONS_JSON IMAGE_DIR INSTANCES_JSON CACHE_DIR [--size 224 ...]``."""
    p = sub.add_parser("prepare", help="run HSI Algorithm 1 once over a SALICON split into a pseudo-label cache")
    p.add_argument("fixations_json", help="SALICON fixations json (e.g. fixations_train2014.json)")
    p.add_argument("image_dir", help="folder of the split's SALICON/COCO images")
    p.add_argument("instances_json", help="COCO instances json with these images (instances_train2014.json)")
    p.add_argument("cache_dir", help="output folder (resumed when it holds an unfinished run)")
    p.add_argument("--size", type=int, default=224, help="training resolution S (S x S)")
    p.add_argument("--max-objects", type=int, default=None, help="objects kept per image (default: all)")
    p.add_argument("--t-a", type=float, default=T_A, help=f"area threshold T_a (default {T_A})")
    p.add_argument("--t-r", type=float, default=T_R, help=f"fixation-share threshold T_r (default {T_R})")
    p.add_argument("--sigma", type=float, default=SIGMA, help=f"Gaussian sigma in px (default {SIGMA})")
    p.add_argument("--reading", choices=READINGS, default="area_share", help="reading of the area test")
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--no-progress", action="store_true")


def run_prepare(args: Any) -> int:
    import json

    out = prepare(args.fixations_json, args.image_dir, args.instances_json, args.cache_dir, size=args.size,
                  max_objects=args.max_objects, t_a=args.t_a, t_r=args.t_r, sigma=args.sigma, reading=args.reading,
                  workers=args.workers, limit=args.limit, progress=not args.no_progress)
    manifest = json.loads((out / "manifest.json").read_text())
    print(f"{out}: {manifest['items']} images with {manifest['objects']} pseudo-labelled objects; "
          f"{len(manifest['skipped'])} images without any")
    return 0
