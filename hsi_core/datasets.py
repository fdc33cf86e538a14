"""Loaders for the published saliency datasets, from local paths only (nothing downloads).

Each loader reads one dataset's own on-disk format and returns plain numpy data in the project's
conventions: fixation points are ``(N, 2)`` arrays of ``(x, y)`` in 0-based pixels. A missing file
raises ``FileNotFoundError`` naming it and where the dataset comes from; a malformed one raises
``ValueError`` naming the file and the problem.

Formats, and our reading where the documentation is silent:

- **SALICON 2015** (json, COCO-style, read as a stream): ``annotations[i] = {image_id, worker_id,
  fixations}``. The released *train* file stores 1-based ``[row, col]``; the older *val* file 0-based
  ``[x, y]`` (fractional raw samples, x from 0.0 to 639.x). ``coord_order="auto"`` and
  ``origin="auto"`` decide per file from the data (:func:`salicon_layout`).
- **SALICON 2017** (``.mat`` per image with a ``gaze`` struct, ``.png`` maps).
- **COCO** instances through pycocotools; instances merged per category on request.
- **HSB** (osf.io/f3baw): we read ``images/<class>/*.jpg``, ``saliency/<class>/*.png`` and a
  ``labels.csv`` (image, label[, fold]); without a fold column, 5 folds are drawn with every class in
  every fold.
- **MIT1003 / MIT300**: ``ALLSTIMULI``, ``ALLFIXATIONMAPS`` (``<name>_fixMap.jpg`` or ``<name>.jpg``),
  fixation locations from ``FIXATIONLOCS/<name>.mat`` (binary ``fixations``) or the release's
  ``ALLFIXATIONMAPS/<name>_fixPts.jpg``.
- **NUS Scene** ``fixations.mat``: a cell (image x viewer) of ``(n, 4)`` arrays. The data notes call
  the columns ``x, y, start, end``; the numbers say otherwise: all fixations fall inside the images
  when the first column is the *row* (93% when it is x), and every next start follows the previous
  start plus the fourth column, which is the *duration*. We read ``row, col, start, duration`` and
  return ``x, y, start, end``.
- **FIGRIM**: ``Stimuli/<category>/*.jpg`` with ``Data/<category>/<name>.mat`` (binary ``fixLocs``).
- **ImageNet**: a folder of ``<wnid>_<name>.JPEG`` (one per class), or the official val layout
  (``ILSVRC2012_val_*.JPEG``) with ``LOC_val_solution.csv`` or a ``val.txt`` label file.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.io import loadmat
from torch.utils.data import Dataset

from hsi_core.demo import HSB_CLASSES
from hsi_core.fixations import BORDER_TOLERANCE_PX, fixation_map
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

def _require(path: Path, dataset: str, what: str = "file") -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{dataset} {what} not found: {path}. Download {dataset} from {SOURCES[dataset]} "
            f"and pass its folder as root=... (nothing is downloaded automatically)."
        )
    return path


def _load_mat(path: Path, dataset: str, variable: str) -> np.ndarray:
    _require(path, dataset)
    try:
        content = loadmat(path)
    except Exception as error:  # scipy raises several types for corrupt files
        raise ValueError(f"{path}: not a readable .mat file ({error})") from error
    if variable not in content:
        found = [k for k in content if not k.startswith("__")]
        raise ValueError(f"{path}: no variable {variable!r} (found {found})")
    return content[variable]


# ----------------------------------------------------------------------------- SALICON
@dataclass
class SaliconImage:
    image_id: int
    file_name: str
    height: int
    width: int
    points: dict[int, np.ndarray] = field(default_factory=dict)  # worker id -> (N, 2) x, y (0-based)

    def all_points(self) -> np.ndarray:
        """Every worker's points together, ``(N, 2)``."""
        return np.concatenate(list(self.points.values())) if self.points else np.zeros((0, 2))

    def fixation_map(self) -> np.ndarray:
        """The binary fixation map of all workers."""
        return fixation_map(self.all_points(), (self.height, self.width), clip=True)


def _read_json(path: Path, dataset: str) -> dict[str, Any]:
    _require(path, dataset)
    try:
        content = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: broken json ({error})") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a json object at the top level")
    return content


# A streaming reader for the top-level object of a json file: the full SALICON val fixation file is
# about 1.9 GB of json, so its ``annotations`` array is read element by element (constant memory)
# instead of ``json.loads`` of the whole text.
_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_DECODER = json.JSONDecoder()
_STREAM_CHUNK = 1 << 20          # characters read at a time
_STREAM_MAX_VALUE = 256 << 20    # one member / array element larger than this is refused


class _JsonStream:
    def __init__(self, handle: Any, path: Path) -> None:
        self.handle, self.path, self.buf, self.pos, self.eof = handle, path, "", 0, False

    def _broken(self, why: str) -> ValueError:
        return ValueError(f"{self.path}: broken json ({why})")

    def _fill(self) -> bool:
        try:
            chunk = self.handle.read(_STREAM_CHUNK)
        except UnicodeDecodeError as error:
            raise self._broken(str(error)) from error
        if not chunk:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0
        return True

    def peek(self) -> str:
        while True:
            self.pos = _JSON_WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                raise self._broken("the file ends early")

    def expect(self, chars: str) -> str:
        c = self.peek()
        if c not in chars:
            raise self._broken(f"expected one of {chars!r} at character {self.pos}, found {c!r}")
        self.pos += 1
        return c

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = _JSON_DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number cut by the chunk end would decode too
                    self.pos = end
                    return obj
            except json.JSONDecodeError as error:
                if self.eof:
                    raise self._broken(str(error)) from error
                if len(self.buf) - self.pos > _STREAM_MAX_VALUE:
                    raise self._broken(f"{error}; or a single value over {_STREAM_MAX_VALUE >> 20} MB") from error
            self._fill()


def _iter_json_members(path: Path, dataset: str, stream: Sequence[str] = ()) -> Any:
    """Members of the top-level json object of ``path`` as ``(key, kind, value)``: ``kind`` is
    ``"value"`` (the whole member), or, for array members named in ``stream``, ``"start"`` once and
    then ``"item"`` per element. Reads the file in chunks; broken json raises ``ValueError``."""
    _require(path, dataset)
    with open(path, encoding="utf-8") as handle:
        s = _JsonStream(handle, path)
        if s.peek() != "{":
            raise ValueError(f"{path}: expected a json object at the top level")
        s.pos += 1
        if s.peek() == "}":
            return
        while True:
            key = s.value()
            if not isinstance(key, str):
                raise s._broken(f"expected a member name, found {key!r}")
            s.expect(":")
            if key in stream and s.peek() == "[":
                s.pos += 1
                yield key, "start", None
                if s.peek() == "]":
                    s.pos += 1
                else:
                    while True:
                        yield key, "item", s.value()
                        if s.expect(",]") == "]":
                            break
            else:
                yield key, "value", s.value()
            if s.expect(",}") == "}":
                return


def _salicon_images(path: Path) -> dict[int, SaliconImage]:
    """The ``images`` list of a SALICON fixation json (reading stops right after it)."""
    for key, _, value in _iter_json_members(path, "SALICON", stream=("annotations",)):
        if key != "images":
            continue
        if not isinstance(value, list):
            break
        images: dict[int, SaliconImage] = {}
        for entry in value:
            try:
                images[int(entry["id"])] = SaliconImage(int(entry["id"]), str(entry["file_name"]),
                                                        int(entry["height"]), int(entry["width"]))
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{path}: malformed image entry {entry!r} ({error})") from error
        return images
    raise ValueError(f"{path}: missing the 'images' list of the SALICON format")


def _salicon_annotations(path: Path, images: dict[int, SaliconImage]) -> Any:
    """Stream ``(image_id, worker, pairs (n, 2) float64)`` for each non-empty annotation, as stored."""
    seen = False
    for key, kind, ann in _iter_json_members(path, "SALICON", stream=("annotations",)):
        if key != "annotations":
            continue
        if kind == "value":
            break
        seen = True
        if kind == "start":
            continue
        if not isinstance(ann, dict):
            raise ValueError(f"{path}: annotation {ann!r} is not an object")
        image_id = ann.get("image_id")
        if image_id not in images:
            raise ValueError(f"{path}: annotation {ann.get('id')} refers to unknown image_id {image_id}")
        try:
            pairs = np.asarray(ann.get("fixations", []), dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: annotation {ann.get('id')} has malformed fixations ({error})") from error
        if pairs.size == 0:
            continue
        if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.isfinite(pairs).all():
            raise ValueError(f"{path}: annotation {ann.get('id')} has malformed fixations (expected [[a, b], ...])")
        yield image_id, ann.get("worker_id"), pairs
    if not seen:
        raise ValueError(f"{path}: missing the 'annotations' list of the SALICON format")


def salicon_layout_evidence(json_path: str | Path, *, images: dict[int, SaliconImage] | None = None) -> dict[str, Any]:
    """What :func:`salicon_layout` decides from, in one streaming pass over a SALICON fixation file:
    ``points``; ``x_first``/``row_first`` (some first/second value beyond its image's height plus
    the border tolerance); ``below_1`` (points with a coordinate below 1: only a 0-based grid has
    them); ``beyond_last_xy``/``beyond_last_row_col`` (points with a coordinate beyond size - 1 under
    each order: only a 1-based grid has them); ``first_min``, ``first_max`` and ``fractional`` (the
    share of non-integer values)."""
    path = Path(json_path)
    images = _salicon_images(path) if images is None else images
    ev: dict[str, Any] = {"points": 0, "x_first": False, "row_first": False, "below_1": 0, "beyond_last_xy": 0,
                          "beyond_last_row_col": 0, "first_min": np.inf, "first_max": -np.inf, "fractional": 0.0}
    tol, fractional = BORDER_TOLERANCE_PX, 0
    for image_id, _, pairs in _salicon_annotations(path, images):
        h, w = images[image_id].height, images[image_id].width
        a, b = pairs[:, 0], pairs[:, 1]
        ev["points"] += len(pairs)
        ev["x_first"] |= bool((a > h + tol).any())
        ev["row_first"] |= bool((b > h + tol).any())
        ev["below_1"] += int(((a < 1) | (b < 1)).sum())
        ev["beyond_last_xy"] += int(((a > w - 1) | (b > h - 1)).sum())
        ev["beyond_last_row_col"] += int(((a > h - 1) | (b > w - 1)).sum())
        ev["first_min"], ev["first_max"] = min(ev["first_min"], float(a.min())), max(ev["first_max"], float(a.max()))
        fractional += int((pairs % 1 != 0).sum())
    ev["fractional"] = fractional / max(2 * ev["points"], 1)
    return ev


def salicon_layout(json_path: str | Path, *, coord_order: str = "auto", origin: int | str = "auto",
                   images: dict[int, SaliconImage] | None = None) -> tuple[str, int]:
    """How one SALICON fixation file stores its points: ``(coord_order, origin)``, detected per file
    in one streaming pass where ``"auto"`` (:func:`salicon_layout_evidence`).

    **Order**: x first when some first value exceeds its image's height (beyond the border tolerance),
    row first when some second value does.
    **Origin** (0- or 1-based): the released *train* file is 1-based (integers 1..480, 1..640); the
    older *val* release is 0-based (fractional raw samples, x from 0.0 to 639.x). We count the points
    that only fit a 0-based grid (a coordinate below 1: the first row/column of a 0-based file)
    against those that only fit a 1-based grid (a coordinate beyond size - 1: the last row/column of
    a 1-based file); raw samples overshoot both borders alike, so the larger count decides. A tie
    (e.g. no point on either border) reads the format's documented 1-based convention.
    """
    path = Path(json_path)
    if coord_order not in ("auto", "row_col", "xy"):
        raise ValueError(f"coord_order must be 'auto', 'row_col' or 'xy', got {coord_order!r}")
    if origin not in ("auto", 0, 1):
        raise ValueError(f"origin must be 'auto', 0 or 1, got {origin!r}")
    if coord_order != "auto" and origin != "auto":
        return coord_order, int(origin)
    ev = salicon_layout_evidence(path, images=images)
    if coord_order == "auto":
        if ev["x_first"] == ev["row_first"]:
            raise ValueError(f"{path}: cannot tell whether fixations are [row, col] or [x, y]; pass coord_order=")
        coord_order = "xy" if ev["x_first"] else "row_col"
    if origin == "auto":
        high = ev["beyond_last_xy"] if coord_order == "xy" else ev["beyond_last_row_col"]
        origin = 0 if ev["below_1"] > high else 1
    return coord_order, int(origin)


def iter_salicon_points(json_path: str | Path, *, coord_order: str = "auto", origin: int | str = "auto",
                        images: dict[int, SaliconImage] | None = None) -> Any:
    """Stream ``(image_id, worker, xy)`` of a SALICON fixation file: ``xy (n, 2)`` 0-based ``(x, y)``,
    clipped within :data:`BORDER_TOLERANCE_PX` (farther out raises). Memory does not grow with the
    file (two streaming passes when the layout is detected)."""
    path = Path(json_path)
    images = _salicon_images(path) if images is None else images
    order, base = salicon_layout(path, coord_order=coord_order, origin=origin, images=images)
    for image_id, worker, pairs in _salicon_annotations(path, images):
        image = images[image_id]
        xy = (pairs[:, ::-1] if order == "row_col" else pairs) - float(base)
        where = f"{path}: image {image_id}, worker {worker} (coordinate order {order}, {base}-based; wrong coord_order?)"
        yield image_id, worker, clip_to_image(xy, image.height, image.width, where)


def load_salicon_fixations(json_path: str | Path, *, coord_order: str = "auto",
                           origin: int | str = "auto") -> dict[int, SaliconImage]:
    """SALICON 2015 fixations per image: ``{image_id: SaliconImage}`` with points in 0-based (x, y).

    ``coord_order``: ``"row_col"`` (the train file), ``"xy"`` (the val file) or ``"auto"``;
    ``origin``: 1 (the train file and the current val release), 0 (the older val release) or
    ``"auto"`` (detected per file, :func:`salicon_layout`). The file is read as a stream.
    Points within :data:`BORDER_TOLERANCE_PX` outside the image are clipped to it; points farther
    out raise. Workers with an empty list are kept out; an image without any fixation raises.
    """
    path = Path(json_path)
    images = _salicon_images(path)
    for image_id, worker, xy in iter_salicon_points(path, coord_order=coord_order, origin=origin, images=images):
        points = images[image_id].points
        points[int(worker if worker is not None else len(points))] = xy
    for image_id, image in images.items():
        if not image.points:
            raise ValueError(f"{path}: image {image_id} ({image.file_name}) has no fixations")
    return images


def salicon_fixation_pixels(json_path: str | Path, *, coord_order: str = "auto", origin: int | str = "auto",
                            ) -> tuple[dict[int, SaliconImage], dict[int, np.ndarray]]:
    """Compact fixation maps of a whole SALICON file: the images (without points) and, per image, the
    sorted flat indices ``row * width + col`` (int32) of its fixated pixels, the same pixels as
    :meth:`SaliconImage.fixation_map`. Memory is the number of fixated pixels, not of raw samples."""
    path = Path(json_path)
    images = _salicon_images(path)
    parts: dict[int, list[np.ndarray]] = {i: [] for i in images}
    sizes, folded = dict.fromkeys(images, 0), {}
    for image_id, _, xy in iter_salicon_points(path, coord_order=coord_order, origin=origin, images=images):
        width = images[image_id].width
        flat = (np.rint(xy[:, 1]).astype(np.int64) * width + np.rint(xy[:, 0]).astype(np.int64)).astype(np.int32)
        parts[image_id].append(flat)
        sizes[image_id] += len(flat)
        if sizes[image_id] > max(1 << 16, 2 * folded.get(image_id, 0)):  # fold duplicates as we go
            parts[image_id] = [np.unique(np.concatenate(parts[image_id]))]
            sizes[image_id] = folded[image_id] = len(parts[image_id][0])
    pixels = {}
    for image_id, image in images.items():
        if not parts[image_id]:
            raise ValueError(f"{path}: image {image_id} ({image.file_name}) has no fixations")
        pixels[image_id] = np.unique(np.concatenate(parts[image_id]))
    return images, pixels


def clip_to_image(xy: np.ndarray, height: int, width: int, where: str,
                  tolerance: float = BORDER_TOLERANCE_PX) -> np.ndarray:
    """Clip 0-based ``(x, y)`` points onto the image when they overshoot by at most ``tolerance``
    pixels (raw mouse/gaze samples do); raise ``ValueError`` naming ``where`` when farther out."""
    over = np.maximum(np.maximum(-xy[:, 0], xy[:, 0] - (width - 1)), np.maximum(-xy[:, 1], xy[:, 1] - (height - 1)))
    if len(xy) and over.max() > tolerance:
        raise ValueError(f"{where}: a fixation lies {over.max():.0f} px outside the {width}x{height} image")
    return np.clip(xy, 0, [width - 1, height - 1])


def load_salicon_2017_mat(mat_path: str | Path) -> SaliconImage:
    """One image of the SALICON 2017 release: ``gaze`` struct array with per-worker ``fixations``
    (``[x, y]``, 1-based), ``image`` name and ``resolution`` ``[height, width]``."""
    path = Path(mat_path)
    _require(path, "SALICON")
    try:
        content = loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as error:
        raise ValueError(f"{path}: not a readable .mat file ({error})") from error
    for key in ("gaze", "resolution"):
        if key not in content:
            raise ValueError(f"{path}: no {key!r} variable (not a SALICON 2017 fixation file)")
    resolution = np.ravel(content["resolution"])
    if resolution.size != 2 or (resolution <= 0).any():
        raise ValueError(f"{path}: 'resolution' should be [height, width], got {resolution.tolist()}")
    height, width = (int(v) for v in resolution)
    image = SaliconImage(-1, str(content.get("image", path.stem)), height, width)
    for worker, gaze in enumerate(np.atleast_1d(content["gaze"])):
        fix = np.asarray(getattr(gaze, "fixations", []), dtype=np.float64)
        if fix.size == 0:
            continue
        if fix.ndim == 1 and fix.size == 2:  # squeeze_me turns a single fixation into a vector
            fix = fix[None]
        if fix.ndim != 2 or fix.shape[1] != 2 or not np.isfinite(fix).all():
            raise ValueError(f"{path}: worker {worker + 1}: fixations should be an (n, 2) array of [x, y], got {fix.shape}")
        image.points[worker] = clip_to_image(fix - 1.0, height, width, f"{path}: worker {worker + 1}")
    if not image.points:
        raise ValueError(f"{path}: no fixations in any worker's record")
    return image


def load_saliency_png(path: str | Path, dataset: str = "SALICON") -> np.ndarray:
    """A saliency map image as ``float32 (H, W)`` in [0, 1]; a blank map raises."""
    rgb = read_image(_require(Path(path), dataset))
    sal = rgb.mean(2).astype(np.float32) / 255.0
    if sal.max() <= 0:
        raise ValueError(f"{path}: the saliency map is blank")
    return sal


# ----------------------------------------------------------------------------- COCO
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
    content = _read_json(path, "COCO")
    for key in ("images", "annotations", "categories"):
        if key not in content:
            raise ValueError(f"{path}: missing {key!r}: not a COCO instances file")
    coco = COCO()
    coco.dataset = content
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


# ----------------------------------------------------------------------------- HSB
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
    labels_csv = _require(root / "labels.csv", "HSB")
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
        _require(image_path, "HSB")
        _require(saliency_path, "HSB", "saliency map")
        items.append(HSBItem(image_path, saliency_path, row["label"], fold))
    return items


# ----------------------------------------------------------------------------- MIT1003 / MIT300 / FIGRIM
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
            locs = _load_mat(self.fixation_locs_path, "MIT1003", variable) > 0
        else:  # the release's <name>_fixPts.jpg: a binary map saved as JPEG, so threshold at half range
            locs = read_image(_require(self.fixation_locs_path, "MIT1003")).max(2) > 127
        if not locs.any():
            raise ValueError(f"{self.fixation_locs_path}: the fixation map is empty")
        return locs

    def density(self) -> np.ndarray:
        if self.fixation_map_path is None:
            raise FileNotFoundError(f"{self.name}: no fixation density map for this stimulus")
        return load_saliency_png(self.fixation_map_path, "MIT1003")


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)


def load_mit1003(root: str | Path) -> list[StimulusItem]:
    """MIT1003 stimuli with their fixation maps and, where present, fixation locations."""
    root = Path(root)
    stimuli = _require(root / "ALLSTIMULI", "MIT1003", "folder")
    maps = root / "ALLFIXATIONMAPS"
    locs = root / "FIXATIONLOCS"
    items = []
    for image in _images_in(stimuli):
        density = next((p for p in (maps / f"{image.stem}_fixMap.jpg", maps / f"{image.stem}.jpg") if p.is_file()), None)
        loc = next((p for p in (locs / f"{image.stem}.mat", maps / f"{image.stem}_fixPts.jpg") if p.is_file()), None)
        items.append(StimulusItem(image.stem, image, density, loc))
    if not items:
        raise ValueError(f"{stimuli}: no images")
    return items


def load_mit1003_center_bias(path: str | Path) -> np.ndarray:
    """The MIT1003 centre-bias map (``center_bias.mat``), as float (H, W)."""
    path = Path(path)
    _require(path, "MIT1003")
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
    _require(folder, "MIT300", "folder")
    items = [StimulusItem(p.stem, p) for p in _images_in(folder)]
    if not items:
        raise ValueError(f"{folder}: no MIT300 images")
    return items


def load_figrim(root: str | Path, category: str) -> list[StimulusItem]:
    """FIGRIM stimuli of one category with their ``fixLocs`` maps."""
    root = Path(root)
    stimuli = _require(root / "Stimuli" / category, "FIGRIM", "folder")
    items = []
    for image in _images_in(stimuli):
        loc = root / "Data" / category / f"{image.stem}.mat"
        items.append(StimulusItem(image.stem, image, None, loc if loc.is_file() else None))
    return items


def figrim_fixations(item: StimulusItem) -> np.ndarray:
    """A FIGRIM stimulus's binary fixation map (variable ``fixLocs``)."""
    if item.fixation_locs_path is None:
        raise FileNotFoundError(f"{item.name}: no FIGRIM fixation file")
    locs = _load_mat(item.fixation_locs_path, "FIGRIM", "fixLocs") > 0
    if not locs.any():
        raise ValueError(f"{item.fixation_locs_path}: the fixation map is empty")
    return locs


# ----------------------------------------------------------------------------- scanpaths (NUS Scene)
def load_scanpaths(mat_path: str | Path, *, variable: str = "fixations") -> list[list[np.ndarray]]:
    """Per-viewer scanpaths, ``[image][viewer] -> (n, 4)`` rows ``x, y, start, end`` (seconds).

    Reads the NUS Scene cell layout ``row, col, start, duration`` (see the module docstring); an
    empty cell gives an empty ``(0, 4)`` array."""
    path = Path(mat_path)
    cells = _load_mat(path, "NUS Scene", variable)
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
    return _images_in(_require(Path(root) / "stimuli", "NUS Scene", "folder"))


# ----------------------------------------------------------------------------- ImageNet
@dataclass
class ImageNetItem:
    path: Path
    wnid: str
    class_name: str


_ONE_PER_CLASS = re.compile(r"^(n\d{8})_(.+)$")


def read_synset_names(path: str | Path) -> list[tuple[str, str]]:
    """``(wnid, class name)`` per line of ``LOC_synset_mapping.txt`` or Caffe's ``synset_words.txt``
    (``n01443537 goldfish, Carassius auratus``), in file order (= the class index); the class name is the
    first comma-separated synonym. ``ValueError`` names the file and line of a malformed entry."""
    path = Path(path)
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, names = line.strip().partition(" ")
        if not re.fullmatch(r"n\d{8}", wnid) or not names.strip():
            raise ValueError(f"{path}:{number}: expected '<wnid> <name>, <synonym>...', got {line.strip()!r}")
        out.append((wnid, names.split(",")[0].strip()))
    if not out:
        raise ValueError(f"{path}: no synsets")
    return out


def _synset_file(root: Path, labels_path: Path, synset_file: str | Path | None) -> Path | None:
    if synset_file is not None:
        return _require(Path(synset_file), "ImageNet", "synset mapping")
    names = ("LOC_synset_mapping.txt", "synset_words.txt")
    places = dict.fromkeys([root, labels_path.parent, root.parent, labels_path.parent.parent])
    return next((d / n for n in names for d in places if (d / n).is_file()), None)


def list_imagenet_images(root: str | Path, *, label_file: str | Path | None = None,
                         synset_file: str | Path | None = None) -> list[ImageNetItem]:
    """ImageNet images with their wnid and class name (the name HSI is prompted with).

    Three layouts: ``<wnid>_<name>.JPEG`` files (one per class; name from the file name); the official val
    layout, ``ILSVRC2012_val_*.JPEG`` with ``LOC_val_solution.csv`` (``ImageId,PredictionString``, the first
    wnid of the string) and names from ``LOC_synset_mapping.txt``; Caffe's layout, ``val.txt`` lines
    ``<file> <class index>`` (0-based) with ``synset_words.txt`` (the index is its line). The mapping file is
    ``synset_file``, else looked up beside the images and the label file (and one folder up). Labels without
    a mapping are an error: a wnid would prompt CLIP with "a photo of a n01443537", an integer is unusable."""
    root = Path(root)
    _require(root, "ImageNet", "folder")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    named = [(p, _ONE_PER_CLASS.match(p.stem)) for p in files]
    if files and all(m for _, m in named) and label_file is None:
        return [ImageNetItem(p, m.group(1), m.group(2).replace("_", " ")) for p, m in named]
    candidates = [Path(label_file)] if label_file else [root / "LOC_val_solution.csv", root / "val.txt"]
    labels_path = next((c for c in candidates if c.is_file()), None)
    if labels_path is None:
        raise FileNotFoundError(
            f"{root}: files are not named <wnid>_<name>.JPEG and no label file was found "
            f"({', '.join(str(c) for c in candidates)}); get LOC_val_solution.csv and LOC_synset_mapping.txt "
            f"from {SOURCES['ImageNet']}"
        )
    raw: dict[str, str] = {}
    for number, line in enumerate(labels_path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("ImageId"):
            continue
        parts = re.split(r"[,\s]+", line.strip())
        if len(parts) < 2:
            raise ValueError(f"{labels_path}:{number}: expected '<file> <label>', got {line.strip()!r}")
        raw[Path(parts[0]).stem] = parts[1]
    mapping_path = _synset_file(root, labels_path, synset_file)
    values = set(raw.values())
    integer = bool(values) and all(v.isdigit() for v in values)
    if not integer and not all(re.fullmatch(r"n\d{8}", v) for v in values):
        bad = sorted(v for v in values if not re.fullmatch(r"n\d{8}", v))[:5]
        raise ValueError(f"{labels_path}: labels must be all wnids (n01443537) or all class indices, got {bad}")
    if mapping_path is None:
        kind = "integer class indices" if integer else "wnids"
        raise FileNotFoundError(
            f"{labels_path}: labels are {kind} but no synset mapping was found (LOC_synset_mapping.txt or "
            f"synset_words.txt beside {root} or {labels_path}); pass synset_file= / --synset-file: HSI needs "
            "class names, not wnids or indices")
    synsets = read_synset_names(mapping_path)
    names = dict(synsets)
    labels: dict[str, tuple[str, str]] = {}
    for stem, value in raw.items():
        if integer:
            if int(value) >= len(synsets):
                raise ValueError(f"{labels_path}: class index {value} of {stem} is out of range for the "
                                 f"{len(synsets)} synsets of {mapping_path} (Caffe's val.txt is 0-based)")
            labels[stem] = synsets[int(value)]
        else:
            if value not in names:
                raise ValueError(f"{labels_path}: wnid {value} of {stem} is not in {mapping_path}")
            labels[stem] = (value, names[value])
    items = []
    for p in files:
        if p.stem not in labels:
            raise ValueError(f"{labels_path}: no label for {p.name}")
        items.append(ImageNetItem(p, *labels[p.stem]))
    return items


# ----------------------------------------------------------------------------- fixation records
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


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(_require(path, "SALICON")) as image:
        return image.height, image.width


def salicon_records(json_path: str | Path, image_dir: str | Path, *, coord_order: str = "auto",
                    limit: int | None = None) -> list[FixationRecord]:
    """SALICON images with per-worker points."""
    images = list(load_salicon_fixations(json_path, coord_order=coord_order).values())[:limit]
    return [FixationRecord(im.file_name, Path(image_dir) / im.file_name, im.height, im.width,
                           viewers=list(im.points.values())) for im in images]


def scanpath_records(mat_path: str | Path, stimuli: Sequence[Path], *, limit: int | None = None) -> list[FixationRecord]:
    """NUS-Scene-style scanpaths (one cell row per stimulus) as per-viewer points."""
    paths = load_scanpaths(mat_path)
    if len(paths) != len(stimuli):
        raise ValueError(f"{mat_path}: {len(paths)} images of scanpaths but {len(stimuli)} stimuli")
    records = []
    for stimulus, viewers in list(zip(stimuli, paths))[:limit]:
        h, w = _image_size(stimulus)
        # one tolerance for every loader and scorer (fixations.BORDER_TOLERANCE_PX): eye trackers
        # record points a few pixels off the image; farther out is an error naming the stimulus
        pts = [clip_to_image(np.asarray(v[:, :2], dtype=np.float64), h, w, f"{mat_path}: {stimulus.name}, viewer {k}")
               for k, v in enumerate(viewers) if len(v)]
        if pts:
            records.append(FixationRecord(stimulus.name, stimulus, h, w, viewers=pts))
    return records


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


def resize_map(m: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(m, dtype=np.float32))
    if tuple(t.shape) != tuple(size):
        t = F.interpolate(t[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
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
            "saliency": resize_map(sal, self.size),
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
        sal = resize_map(load_saliency_png(item.saliency_path, "HSB"), self.size)
        return {
            "image": to_tensor_image(read_image(item.image_path), self.size),
            "label": self.classes.index(item.label),
            "saliency": sal,
            # HSB releases saliency maps, not fixation points: the map's top 2% stand in for fixations (NSS).
            "fixations": sal >= torch.quantile(sal.flatten(), 0.98).clamp_min(1e-6),
            "fold": item.fold,
            "index": i,
        }


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

