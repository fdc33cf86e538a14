"""Fixation records (one image's fixations, per viewer or as a binary map) and the torch Datasets built
from them: images, saliency maps and fixation maps resized to one grid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from hsi_core.fixations import fixation_map
from hsi_core.io import read_image
from hsi_core.maps import resize

if TYPE_CHECKING:
    from hsi_core.datasets.mit import StimulusItem


@dataclass
class FixationRecord:
    """One image's fixations: per viewer (points, 0-based x, y) when known, else a binary map."""

    name: str
    image_path: Path
    height: int
    width: int
    viewers: list[np.ndarray] | None = None
    fixations: np.ndarray | None = None

    def scaled(self, max_side: int) -> "FixationRecord":
        """The same record on a grid whose longer side is at most ``max_side`` (points rescaled)."""
        scale = min(1.0, max_side / max(self.height, self.width))
        if scale == 1.0:
            return self
        h, w = max(1, round(self.height * scale)), max(1, round(self.width * scale))
        viewers = None if self.viewers is None else [v * [w / self.width, h / self.height] for v in self.viewers]
        fix = None
        if self.fixations is not None:
            rows, cols = np.nonzero(self.fixations)
            fix = np.zeros((h, w), bool)
            fix[(rows * h) // self.height, (cols * w) // self.width] = True
        return FixationRecord(self.name, self.image_path, h, w, viewers, fix)

    def fixation_map(self) -> np.ndarray:
        if self.fixations is not None:
            return self.fixations
        return fixation_map(np.concatenate(self.viewers), (self.height, self.width), clip=True)



def fixation_map_records(items: Sequence[StimulusItem], loader: Any, *, limit: int | None = None) -> list[FixationRecord]:
    """Stimuli whose fixations come as binary maps (MIT1003 ``FIXATIONLOCS``, FIGRIM ``fixLocs``)."""
    records = []
    for item in [it for it in items if it.fixation_locs_path is not None][:limit]:
        fix = loader(item)
        records.append(FixationRecord(item.name, item.image_path, fix.shape[0], fix.shape[1], fixations=fix))
    return records


# ----------------------------------------------------------------------------- torch datasets
def to_tensor_image(rgb: np.ndarray, size: tuple[int, int] | None) -> torch.Tensor:
    """``uint8 (H, W, 3)`` -> float ``(3, h, w)`` in [0, 1], resized bilinearly when ``size`` is given."""
    t = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    if size is not None and tuple(t.shape[1:]) != tuple(size):
        t = F.interpolate(t[None], size=size, mode="bilinear", align_corners=False)[0].clamp(0, 1)
    return t


def resize_fixations(fix: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Move each fixated pixel to its place in the resized grid (no fixation is lost or smeared)."""
    fix = np.asarray(fix) > 0
    h, w = fix.shape
    rows, cols = np.nonzero(fix)
    out = torch.zeros(size, dtype=torch.bool)
    out[torch.as_tensor((rows * size[0]) // h), torch.as_tensor((cols * size[1]) // w)] = True
    return out


class SaliencyDataset(Dataset):
    """Images with saliency maps and binary fixation maps, resized to ``size``.

    Each of ``saliency`` and ``fixations`` is a list of arrays or of zero-argument callables that
    load them (so large sets are read lazily)."""

    def __init__(self, images: Sequence[str | Path], saliency: Sequence[Any], fixations: Sequence[Any],
                 size: tuple[int, int] = (224, 224)) -> None:
        if not (len(images) == len(saliency) == len(fixations)):
            raise ValueError(f"SaliencyDataset: {len(images)} images, {len(saliency)} maps, {len(fixations)} fixation maps")
        self.images, self.saliency, self.fixations, self.size = list(images), list(saliency), list(fixations), size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        def value(x: Any) -> np.ndarray:
            return np.asarray(x() if callable(x) else x)

        sal, fix = value(self.saliency[i]), value(self.fixations[i])
        check_map_pair(sal, fix, f"{self.images[i]}")
        return {
            "image": to_tensor_image(read_image(self.images[i]), self.size),
            "saliency": resize(sal.astype(np.float32), self.size),
            "fixations": resize_fixations(fix, self.size),
            "index": i,
        }


def check_map_pair(saliency: np.ndarray, fixations: np.ndarray, where: str) -> None:
    """Raise ``ValueError`` unless both maps are 2-D with the same aspect ratio (1 %), the saliency
    map is finite and not constant, and at least one pixel is fixated."""
    if saliency.ndim != 2 or fixations.ndim != 2:
        raise ValueError(f"{where}: maps must be 2-D, got saliency {saliency.shape} and fixations {fixations.shape}")
    (hs, ws), (hf, wf) = saliency.shape, fixations.shape
    if abs(hs * wf - hf * ws) > 0.01 * hs * wf:
        raise ValueError(f"{where}: shape mismatch between saliency {saliency.shape} and fixations {fixations.shape}")
    if not np.isfinite(saliency).all():
        raise ValueError(f"{where}: the saliency map holds NaN or infinite values")
    if np.ptp(saliency) == 0:
        raise ValueError(f"{where}: the saliency map is constant")
    if not (fixations > 0).any():
        raise ValueError(f"{where}: the fixation map is empty")


def records_dataset(records: Sequence[FixationRecord], size: tuple[int, int], sigma_fraction: float) -> SaliencyDataset:
    """A training set from fixation records: each image with its fixation map and the map blurred
    with ``sigma_fraction`` of the image width (maps built lazily, at the record's resolution)."""
    from hsi_core.fixations import saliency_map

    return SaliencyDataset(
        [r.image_path for r in records],
        [lambda r=r: saliency_map(r.fixation_map(), sigma_fraction * r.width) for r in records],
        [r.fixation_map for r in records],
        size=size,
    )


def collate_dicts(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors and numbers of a list of dicts (the default collate, kept explicit)."""
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], (int, float)):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out
