"""SALICON fixations (salicon.net; images are COCO 2014).

- **SALICON 2015** (json, COCO-style, read as a stream): ``annotations[i] = {image_id, worker_id,
  fixations}``. The released *train* file stores 1-based ``[row, col]``; the older *val* file 0-based
  ``[x, y]`` (fractional raw samples, x from 0.0 to 639.x). ``coord_order="auto"`` and
  ``origin="auto"`` decide per file from the data (:func:`salicon_layout`).
- **SALICON 2017** (``.mat`` per image with a ``gaze`` struct, ``.png`` maps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from scipy.io import loadmat

from hsi_core.datasets.common import clip_to_image, require_file
from hsi_core.datasets.records import FixationRecord
from hsi_core.fixations import BORDER_TOLERANCE_PX, fixation_map
from hsi_core.io import iter_json_members


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


def _salicon_members(path: Path, stream: Sequence[str] = ()) -> Iterator[tuple[str, str, Any]]:
    """The members of a SALICON json file, streamed (:func:`hsi_core.io.iter_json_members`)."""
    return iter_json_members(require_file(path, "SALICON"), stream=stream)


def _salicon_images(path: Path) -> dict[int, SaliconImage]:
    """The ``images`` list of a SALICON fixation json (reading stops right after it)."""
    for key, _, value in _salicon_members(path, stream=("annotations",)):
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
    for key, kind, ann in _salicon_members(path, stream=("annotations",)):
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
    clipped within :data:`hsi_core.fixations.BORDER_TOLERANCE_PX` (farther out raises). Memory does not grow with the
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
    Points within :data:`hsi_core.fixations.BORDER_TOLERANCE_PX` outside the image are clipped to it; points farther
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


def load_salicon_2017_mat(mat_path: str | Path) -> SaliconImage:
    """One image of the SALICON 2017 release: ``gaze`` struct array with per-worker ``fixations``
    (``[x, y]``, 1-based), ``image`` name and ``resolution`` ``[height, width]``."""
    path = Path(mat_path)
    require_file(path, "SALICON")
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



def salicon_records(json_path: str | Path, image_dir: str | Path, *, coord_order: str = "auto",
                    limit: int | None = None) -> list[FixationRecord]:
    """SALICON images with per-worker points."""
    images = list(load_salicon_fixations(json_path, coord_order=coord_order).values())[:limit]
    return [FixationRecord(im.file_name, Path(image_dir) / im.file_name, im.height, im.width,
                           viewers=list(im.points.values())) for im in images]
