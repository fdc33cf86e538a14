"""What every loader of :mod:`hsi_core.datasets` shares: where each dataset comes from, the errors for a
missing or malformed file, ``.mat``/json/image-folder readers, the border clip of fixation points and the
saliency-map PNG reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import loadmat

from hsi_core.fixations import BORDER_TOLERANCE_PX
from hsi_core.io import read_image

SOURCES = {
    "SALICON": "salicon.net (images: COCO 2014 from cocodataset.org)",
    "COCO": "cocodataset.org (annotations_trainval2014.zip / 2017)",
    "HSB": "osf.io/f3baw (human saliency benchmark)",
    "MIT1003": "saliency.tuebingen.ai or people.csail.mit.edu/tjudd/WherePeopleLook",
    "MIT300": "saliency.tuebingen.ai (MIT300 benchmark stimuli)",
    "NUS Scene": "the NUS VIP lab's scene saliency dataset (500 SUN2012 images with eye fixations)",
    "FIGRIM": "figrim.mit.edu",
    "ImageNet": "image-net.org (ILSVRC2012)",
}


def require_file(path: Path, dataset: str, what: str = "file") -> Path:
    """``path`` when it exists, else ``FileNotFoundError`` naming it and where ``dataset`` comes from."""
    if not path.exists():
        raise FileNotFoundError(
            f"{dataset} {what} not found: {path}. Download {dataset} from {SOURCES[dataset]} "
            f"and pass its folder as root=... (nothing is downloaded automatically)."
        )
    return path


def load_mat_variable(path: Path, dataset: str, variable: str) -> np.ndarray:
    """The variable ``variable`` of a ``.mat`` file; ``ValueError`` naming the file when it is unreadable or lacks it."""
    require_file(path, dataset)
    try:
        content = loadmat(path)
    except Exception as error:  # scipy raises several types for corrupt files
        raise ValueError(f"{path}: not a readable .mat file ({error})") from error
    if variable not in content:
        found = [k for k in content if not k.startswith("__")]
        raise ValueError(f"{path}: no variable {variable!r} (found {found})")
    return content[variable]


def read_json(path: Path, dataset: str) -> dict[str, Any]:
    """The top-level json object of a small file (large ones are streamed: :class:`hsi_core.io.JsonStream`)."""
    require_file(path, dataset)
    try:
        content = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: broken json ({error})") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a json object at the top level")
    return content


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def images_in(folder: Path) -> list[Path]:
    """The image files of ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def image_size(path: Path, dataset: str) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header only."""
    from PIL import Image

    with Image.open(require_file(path, dataset)) as image:
        return image.height, image.width


def clip_to_image(xy: np.ndarray, height: int, width: int, where: str,
                  tolerance: float = BORDER_TOLERANCE_PX) -> np.ndarray:
    """Clip 0-based ``(x, y)`` points onto the image when they overshoot by at most ``tolerance``
    pixels (raw mouse/gaze samples do); raise ``ValueError`` naming ``where`` when farther out."""
    over = np.maximum(np.maximum(-xy[:, 0], xy[:, 0] - (width - 1)), np.maximum(-xy[:, 1], xy[:, 1] - (height - 1)))
    if len(xy) and over.max() > tolerance:
        raise ValueError(f"{where}: a fixation lies {over.max():.0f} px outside the {width}x{height} image")
    return np.clip(xy, 0, [width - 1, height - 1])


def load_saliency_png(path: str | Path, dataset: str = "SALICON") -> np.ndarray:
    """A saliency map image as ``float32 (H, W)`` in [0, 1]; a blank map raises."""
    rgb = read_image(require_file(Path(path), dataset))
    sal = rgb.mean(2).astype(np.float32) / 255.0
    if sal.max() <= 0:
        raise ValueError(f"{path}: the saliency map is blank")
    return sal
