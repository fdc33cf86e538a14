"""MIT1003 and MIT300 (saliency.tuebingen.ai; people.csail.mit.edu/tjudd/WherePeopleLook).

``ALLSTIMULI``, ``ALLFIXATIONMAPS`` (``<name>_fixMap.jpg`` or ``<name>.jpg``), fixation locations from
``FIXATIONLOCS/<name>.mat`` (binary ``fixations``) or the release's ``ALLFIXATIONMAPS/<name>_fixPts.jpg``.
:class:`StimulusItem` is also FIGRIM's item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from hsi_core.datasets.common import images_in, load_mat_variable, load_saliency_png, require_file
from hsi_core.io import read_image


@dataclass
class StimulusItem:
    name: str
    image_path: Path
    fixation_map_path: Path | None = None  # density map image
    fixation_locs_path: Path | None = None  # binary fixation locations (.mat)

    def fixations(self, variable: str = "fixations") -> np.ndarray:
        """The binary fixation-location map, ``bool (H, W)``."""
        if self.fixation_locs_path is None:
            raise FileNotFoundError(f"{self.name}: no fixation-location file for this stimulus")
        if self.fixation_locs_path.suffix.lower() == ".mat":
            locs = load_mat_variable(self.fixation_locs_path, "MIT1003", variable) > 0
        else:  # the release's <name>_fixPts.jpg: a binary map saved as JPEG, so threshold at half range
            locs = read_image(require_file(self.fixation_locs_path, "MIT1003")).max(2) > 127
        if not locs.any():
            raise ValueError(f"{self.fixation_locs_path}: the fixation map is empty")
        return locs

    def density(self) -> np.ndarray:
        if self.fixation_map_path is None:
            raise FileNotFoundError(f"{self.name}: no fixation density map for this stimulus")
        return load_saliency_png(self.fixation_map_path, "MIT1003")



def load_mit1003(root: str | Path) -> list[StimulusItem]:
    """MIT1003 stimuli with their fixation maps and, where present, fixation locations."""
    root = Path(root)
    stimuli = require_file(root / "ALLSTIMULI", "MIT1003", "folder")
    maps = root / "ALLFIXATIONMAPS"
    locs = root / "FIXATIONLOCS"
    items = []
    for image in images_in(stimuli):
        density = next((p for p in (maps / f"{image.stem}_fixMap.jpg", maps / f"{image.stem}.jpg") if p.is_file()), None)
        loc = next((p for p in (locs / f"{image.stem}.mat", maps / f"{image.stem}_fixPts.jpg") if p.is_file()), None)
        items.append(StimulusItem(image.stem, image, density, loc))
    if not items:
        raise ValueError(f"{stimuli}: no images")
    return items


def load_mit1003_center_bias(path: str | Path) -> np.ndarray:
    """The MIT1003 centre-bias map (``center_bias.mat``), as float (H, W)."""
    path = Path(path)
    require_file(path, "MIT1003")
    try:
        content = loadmat(path)
    except Exception as error:
        raise ValueError(f"{path}: not a readable .mat file ({error})") from error
    arrays = [v for k, v in content.items() if not k.startswith("__") and isinstance(v, np.ndarray) and v.ndim == 2]
    if not arrays:
        raise ValueError(f"{path}: no 2-D map inside")
    bias = arrays[0].astype(np.float64)
    if not np.isfinite(bias).all() or np.ptp(bias) == 0:
        raise ValueError(f"{path}: the centre-bias map is constant or holds NaN")
    return bias


def load_mit300(root: str | Path) -> list[StimulusItem]:
    """MIT300 stimuli (its fixations are held by the benchmark)."""
    root = Path(root)
    folder = root / "BenchmarkIMAGES" if (root / "BenchmarkIMAGES").is_dir() else root
    require_file(folder, "MIT300", "folder")
    items = [StimulusItem(p.stem, p) for p in images_in(folder)]
    if not items:
        raise ValueError(f"{folder}: no MIT300 images")
    return items
