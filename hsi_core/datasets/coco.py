"""COCO instance masks (cocodataset.org) through pycocotools; instances merged per category on request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hsi_core.datasets.common import read_json


@dataclass
class ObjectMask:
    category: str
    mask: np.ndarray  # bool (H, W)
    area_fraction: float


def load_coco_masks(instances_json: str | Path, image_id: int, *, merge_by_category: bool = True,
                    coco: Any = None) -> list[ObjectMask]:
    """Instance masks of one image through pycocotools (pass ``coco`` to reuse a loaded index)."""
    path = Path(instances_json)
    if coco is None:
        coco = load_coco(path)
    if image_id not in coco.imgs:
        raise ValueError(f"{path}: no image with id {image_id}")
    info = coco.imgs[image_id]
    masks: dict[str, np.ndarray] = {}
    objects: list[ObjectMask] = []
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=None)):
        try:
            mask = coco.annToMask(ann).astype(bool)
        except Exception as error:
            raise ValueError(f"{path}: annotation {ann.get('id')} has a malformed segmentation ({error})") from error
        name = coco.cats[ann["category_id"]]["name"]
        if merge_by_category:
            masks[name] = masks.get(name, np.zeros_like(mask)) | mask
        else:
            objects.append(ObjectMask(name, mask, float(mask.mean())))
    if merge_by_category:
        objects = [ObjectMask(name, m, float(m.mean())) for name, m in masks.items()]
    total = info["height"] * info["width"]
    return [o for o in objects if o.mask.sum() > 0 and total > 0]


def load_coco(instances_json: str | Path) -> Any:
    """A pycocotools ``COCO`` index, with clear errors for a missing or broken file."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    path = Path(instances_json)
    content = read_json(path, "COCO")
    for key in ("images", "annotations", "categories"):
        if key not in content:
            raise ValueError(f"{path}: missing {key!r}: not a COCO instances file")
    coco = COCO()
    coco.dataset = content
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco
