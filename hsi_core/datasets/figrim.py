"""FIGRIM (figrim.mit.edu): ``Stimuli/<category>/*.jpg`` with ``Data/<category>/<name>.mat`` (binary ``fixLocs``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hsi_core.datasets.common import images_in, load_mat_variable, require_file
from hsi_core.datasets.mit import StimulusItem


def load_figrim(root: str | Path, category: str) -> list[StimulusItem]:
    """FIGRIM stimuli of one category with their ``fixLocs`` maps."""
    root = Path(root)
    stimuli = require_file(root / "Stimuli" / category, "FIGRIM", "folder")
    items = []
    for image in images_in(stimuli):
        loc = root / "Data" / category / f"{image.stem}.mat"
        items.append(StimulusItem(image.stem, image, None, loc if loc.is_file() else None))
    return items


def figrim_fixations(item: StimulusItem) -> np.ndarray:
    """A FIGRIM stimulus's binary fixation map (variable ``fixLocs``)."""
    if item.fixation_locs_path is None:
        raise FileNotFoundError(f"{item.name}: no FIGRIM fixation file")
    locs = load_mat_variable(item.fixation_locs_path, "FIGRIM", "fixLocs") > 0
    if not locs.any():
        raise ValueError(f"{item.fixation_locs_path}: the fixation map is empty")
    return locs
