"""NUS Scene scanpaths (the NUS VIP lab's 500 SUN2012 images with eye fixations).

``fixations.mat``: a cell (image x viewer) of ``(n, 4)`` arrays. The data notes call the columns
``x, y, start, end``; the numbers say otherwise: all fixations fall inside the images when the first
column is the *row* (93% when it is x), and every next start follows the previous start plus the fourth
column, which is the *duration*. We read ``row, col, start, duration`` and return ``x, y, start, end``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from hsi_core.datasets.common import clip_to_image, image_size, images_in, load_mat_variable, require_file
from hsi_core.datasets.records import FixationRecord


def load_scanpaths(mat_path: str | Path, *, variable: str = "fixations") -> list[list[np.ndarray]]:
    """Per-viewer scanpaths, ``[image][viewer] -> (n, 4)`` rows ``x, y, start, end`` (seconds).

    Reads the NUS Scene cell layout ``row, col, start, duration`` (see the module docstring); an
    empty cell gives an empty ``(0, 4)`` array."""
    path = Path(mat_path)
    cells = load_mat_variable(path, "NUS Scene", variable)
    if cells.dtype != object or cells.ndim != 2:
        raise ValueError(f"{path}: {variable!r} should be a cell array (images x viewers), got {cells.dtype} {cells.shape}")
    out: list[list[np.ndarray]] = []
    for i in range(cells.shape[0]):
        row = []
        for v in range(cells.shape[1]):
            a = np.asarray(cells[i, v], dtype=np.float64)
            if a.size == 0:
                row.append(np.zeros((0, 4)))
                continue
            if a.ndim != 2 or a.shape[1] != 4 or not np.isfinite(a).all():
                raise ValueError(f"{path}: cell ({i + 1}, {v + 1}) is not an (n, 4) array of finite numbers")
            row.append(np.c_[a[:, 1], a[:, 0], a[:, 2], a[:, 2] + a[:, 3]])
        out.append(row)
    return out


def nus_scene_stimuli(root: str | Path) -> list[Path]:
    """The NUS Scene stimuli, ``stimuli/001.jpg`` ..., in image order (matching the cell rows)."""
    return images_in(require_file(Path(root) / "stimuli", "NUS Scene", "folder"))



def scanpath_records(mat_path: str | Path, stimuli: Sequence[Path], *, limit: int | None = None) -> list[FixationRecord]:
    """NUS-Scene-style scanpaths (one cell row per stimulus) as per-viewer points."""
    paths = load_scanpaths(mat_path)
    if len(paths) != len(stimuli):
        raise ValueError(f"{mat_path}: {len(paths)} images of scanpaths but {len(stimuli)} stimuli")
    records = []
    for stimulus, viewers in list(zip(stimuli, paths))[:limit]:
        h, w = image_size(stimulus, "NUS Scene")
        # one tolerance for every loader and scorer (fixations.BORDER_TOLERANCE_PX): eye trackers
        # record points a few pixels off the image; farther out is an error naming the stimulus
        pts = [clip_to_image(np.asarray(v[:, :2], dtype=np.float64), h, w, f"{mat_path}: {stimulus.name}, viewer {k}")
               for k, v in enumerate(viewers) if len(v)]
        if pts:
            records.append(FixationRecord(stimulus.name, stimulus, h, w, viewers=pts))
    return records
