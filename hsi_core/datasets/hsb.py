"""The human saliency benchmark, HSB (osf.io/f3baw).

We read ``images/<class>/*.jpg``, ``saliency/<class>/*.png`` and a ``labels.csv`` (image, label[, fold]);
without a fold column, 5 folds are drawn with every class in every fold.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset

from hsi_core.datasets.common import load_saliency_png, require_file
from hsi_core.datasets.records import to_tensor_image
from hsi_core.io import read_image
from hsi_core.maps import resize, top_fraction_fixations

#: The 20 HSB classes in the paper's order (HSI paper, Section 4; the class index of every label, prompt and table).
HSB_CLASSES = (
    "ant", "zebra", "horse", "lion", "jellyfish", "snail", "lemon", "mushroom", "corn", "pizza",
    "laptop", "cellphone", "microphone", "sofa", "broom", "shovel", "umbrella", "harp",
    "tennis ball", "fountain",
)


@dataclass
class HSBItem:
    image_path: Path
    saliency_path: Path
    label: str
    fold: int


def hsb_folds(labels: Sequence[str], n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold of each image, stratified: a round-robin that runs on from class to class (so folds
    differ in size by at most one image), shuffled within each class. Every class is in every fold
    when it has at least ``n_folds`` images."""
    if n_folds < 1:
        raise ValueError(f"hsb_folds: n_folds must be >= 1, got {n_folds}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    folds = np.empty(len(labels), dtype=np.int64)
    start = 0
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        folds[idx] = rng.permutation((start + np.arange(len(idx))) % n_folds)
        start += len(idx)
    return folds


def load_hsb(root: str | Path, *, classes: Sequence[str] = HSB_CLASSES) -> list[HSBItem]:
    """The HSB set (our reading of the OSF layout; see the module docstring)."""
    root = Path(root)
    labels_csv = require_file(root / "labels.csv", "HSB")
    with open(labels_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"image", "label"} <= set(rows[0]):
        raise ValueError(f"{labels_csv}: expected columns image,label[,fold]")
    unknown = sorted({r["label"] for r in rows} - set(classes))
    if unknown:
        raise ValueError(f"{labels_csv}: unknown labels {unknown} (expected the HSB classes)")
    if "fold" in rows[0] and all(r.get("fold", "") != "" for r in rows):
        bad = [r["fold"] for r in rows if not r["fold"].strip().isdigit()]
        if bad:
            raise ValueError(f"{labels_csv}: fold values must be non-negative integers, got {bad[:3]}")
        folds = [int(r["fold"]) for r in rows]
    else:
        folds = hsb_folds([r["label"] for r in rows]).tolist()
    missing_images = [r["image"] for r in rows if not r["image"]]
    if missing_images:
        raise ValueError(f"{labels_csv}: {len(missing_images)} rows have an empty image path")
    items = []
    for row, fold in zip(rows, folds):
        image_path = root / row["image"]
        rel = Path(row["image"])
        saliency_path = root / "saliency" / rel.parent.name / f"{rel.stem}.png"
        require_file(image_path, "HSB")
        require_file(saliency_path, "HSB", "saliency map")
        items.append(HSBItem(image_path, saliency_path, row["label"], fold))
    return items



class HSBDataset(Dataset):
    """HSB images with their label, saliency map, a binary map of its peaks, and fold."""

    def __init__(self, root: str | Path, folds: Sequence[int] | None = None, size: tuple[int, int] = (224, 224),
                 classes: Sequence[str] = HSB_CLASSES, items: list[HSBItem] | None = None) -> None:
        items = items if items is not None else load_hsb(root, classes=classes)
        self.items = [it for it in items if folds is None or it.fold in folds]
        self.classes = list(classes)
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.items[i]
        sal = resize(load_saliency_png(item.saliency_path, "HSB"), self.size)
        return {
            "image": to_tensor_image(read_image(item.image_path), self.size),
            "label": self.classes.index(item.label),
            "saliency": sal,
            # HSB releases saliency maps, not fixation points: the map's top 2% stand in for fixations (NSS).
            "fixations": top_fraction_fixations(sal, 0.02, method="quantile"),
            "fold": item.fold,
            "index": i,
        }
