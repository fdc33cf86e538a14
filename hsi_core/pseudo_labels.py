"""HSI Algorithm 1: per-object pseudo fixation and saliency maps from passive-viewing fixations.

SALICON gives one fixation map per image (free viewing); HSI pretraining needs a map *conditioned
on each object*. Algorithm 1 keeps, for each COCO object, the fixations that fall on its mask, if the
object is large enough and holds enough of the fixations, and blurs them into a saliency map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from hsi_core.fixations import saliency_map

T_A = 0.1    # threshold on the object's share of the image area (paper: "ratio of area size")
T_R = 0.05   # threshold on the object's share of the fixations (paper: "ratio of fixations")
SIGMA = 19   # Gaussian sigma in pixels, as SALICON's maps (640x480 images)


@dataclass
class PseudoLabel:
    """One object's pseudo-label: ``fixation_map`` bool ``(H, W)`` and ``saliency_map`` float ``(H, W)`` (max 1)."""

    category: str
    fixation_map: np.ndarray
    saliency_map: np.ndarray
    area_ratio: float
    fixation_ratio: float


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
    """Algorithm 1's two tests for ``(N, H, W)`` masks, vectorised: ``(area / image area, fixations on
    the object / all fixations)``, each ``(N,)``."""
    fix = np.asarray(fixation_map, dtype=bool)
    flat = masks.reshape(masks.shape[0], -1)
    area = flat.sum(1) / fix.size
    on_object = (flat & fix.reshape(1, -1)).sum(1)
    return area, on_object / max(int(fix.sum()), 1)


def algorithm1(fixation_map: np.ndarray, masks: Sequence[Any], t_a: float = T_A, t_r: float = T_R,
               sigma: float = SIGMA) -> list[PseudoLabel]:
    """HSI Algorithm 1: pseudo fixation map ``f~_n = m_n . f_pv`` and saliency map ``q~_n = Gauss(f~_n, sigma)``
    for every object that passes both tests.

    ``masks`` are ``(category, bool mask)`` pairs or ``datasets.ObjectMask``; instances of one category are
    merged into one object first (the text label names a category, not an instance).

    Reading of the tests. As printed, the first test ``(1/gamma) sum(m_n) >= T_a`` with ``gamma`` the
    area of ``m_n`` is always 1; we read it as the object's share of the **image** area,
    ``sum(m_n) / (H W) >= T_a``. The second, ``(1/eta) sum(f~_n) >= T_r`` with ``eta = sum(f_pv)``, is the
    share of the image's fixations that land on the object. ``sigma`` is in pixels of the map.
    """
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
    keep = np.nonzero((area >= t_a) & (ratio >= t_r) & (ratio > 0))[0]
    if keep.size == 0:
        return []
    pseudo_fix = stack[keep] & fix[None]
    blurred = saliency_map(torch.from_numpy(pseudo_fix.astype(np.float32)), sigma).numpy()
    return [PseudoLabel(names[k], pseudo_fix[i], blurred[i], float(area[k]), float(ratio[k])) for i, k in enumerate(keep)]


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


class PseudoLabelDataset(torch.utils.data.Dataset):
    """SALICON images with their free-viewing maps and Algorithm 1 pseudo-labels, for HSI pretraining (Eq. 8-11).

    Items: ``image (3, S, S)`` in [0, 1]; ``saliency``/``fixations (S, S)`` (the passive-viewing map, sigma px
    at native resolution, and fixated pixels); ``pseudo_saliency``/``pseudo_fixations (N, S, S)``,
    ``valid (N,)`` and ``label_ids (N,)`` (indices into ``vocabulary``), ``N = max_objects``. Pseudo-labels are
    computed once at construction (native resolution, as the paper); images where no object passes both
    tests, or whose categories are missing from ``vocabulary``, are dropped (``dropped`` lists them).
    """

    def __init__(self, fixations_json: str | Any, image_dir: str | Any, instances_json: str | Any,
                 vocabulary: Sequence[str], *, size: tuple[int, int] = (224, 224), max_objects: int = 4,
                 t_a: float = T_A, t_r: float = T_R, sigma: float = SIGMA, limit: int | None = None) -> None:
        from pathlib import Path

        from hsi_core import datasets

        self.image_dir, self.size, self.max_objects, self.sigma = Path(image_dir), tuple(size), max_objects, sigma
        self.vocabulary = list(vocabulary)
        coco = datasets.load_coco(instances_json)
        images = list(datasets.load_salicon_fixations(fixations_json).values())[:limit]
        self.items: list[tuple[Any, list[PseudoLabel]]] = []
        self.dropped: list[str] = []
        for im in images:
            if im.image_id not in coco.imgs:
                raise ValueError(f"{instances_json}: no COCO annotations for SALICON image {im.file_name}")
            fix = im.fixation_map()
            masks = [m for m in datasets.load_coco_masks(instances_json, im.image_id, coco=coco)
                     if m.category in self.vocabulary]
            labels = algorithm1(fix, masks, t_a, t_r, sigma) if fix.any() else []
            if labels:
                self.items.append((im, labels))
            else:
                self.dropped.append(im.file_name)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from hsi_core.datasets import resize_fixations, resize_map, to_tensor_image
        from hsi_core.io import read_image

        im, labels = self.items[i]
        fix = im.fixation_map()
        stacked = stack_pseudo_labels(labels, self.max_objects)
        n = self.max_objects
        pseudo_sal = torch.zeros(n, *self.size)
        pseudo_fix = torch.zeros(n, *self.size, dtype=torch.bool)
        for k in range(int(stacked["valid"].sum())):
            pseudo_sal[k] = resize_map(stacked["saliency"][k].numpy(), self.size)
            pseudo_fix[k] = resize_fixations(stacked["fixations"][k].numpy(), self.size)
        ids = torch.zeros(n, dtype=torch.long)
        ids[: len(stacked["categories"])] = torch.tensor([self.vocabulary.index(c) for c in stacked["categories"]])
        return {
            "image": to_tensor_image(read_image(self.image_dir / im.file_name), self.size),
            "saliency": resize_map(saliency_map(fix, self.sigma), self.size),
            "fixations": resize_fixations(fix, self.size),
            "pseudo_saliency": pseudo_sal,
            "pseudo_fixations": pseudo_fix,
            "valid": stacked["valid"],
            "label_ids": ids,
            "index": i,
        }
