"""The embedded demo world: a small synthetic dataset with planted truth, written in the real formats.

A fresh clone has no eye-tracking data, so the book runs on this world. Everything is drawn from a
seed, in seconds, and written to disk in the formats the real loaders read (``hsi_core.datasets``):

- **Objects.** Each of the 20 HSB classes is a distinct glyph: its own polygon shape, colour and
  texture (:data:`CLASS_STYLES`). Objects lie on smooth textured backgrounds.
- **SALICON + COCO** (``salicon/``, ``coco/``): 640x480 scenes with 2-4 objects; free-viewing
  "mouse" fixations of many workers (a centre bias plus every object, larger objects drawing more);
  the COCO instance polygons of every object (categories = the 20 HSB classes, ids 1..20).
- **HSB** (``hsb/``): 200x260 images (the HSB 400x520 frame at half size) of the labelled object and,
  in about half of them, a second object of another class. The saliency map comes from
  explanation-task fixations of explorative viewers, concentrated on the *labelled* object, blurred
  with 0.5 dva (21 px at full size, 10.5 px here). An image-only model cannot tell which of two
  objects is explained; a label-aware model can.
- **ImageNet-style folder** (``imagenet/``): one 224x224 image per class, ``<wnid>_<class>.JPEG``.
- **Scanpaths** (``scanpaths/``): viewers of two planted strategies built like the EMHMM reference
  study: both look at the same three ROIs (the objects) with the same spread and the same long-run
  share of fixations, but *explorative* viewers (two thirds, unequal groups) switch between objects
  and start off the key object, while *focused* viewers dwell and start on it; every viewer is
  blended toward the other group by a weight of its own. In the explanation task every viewer moves
  halfway toward the focused pattern (the paper's task effect).
  Written as NUS-Scene-style ``fixations.mat`` cells (image x viewer) of ``(n, 4)`` rows
  ``row, col, start, duration``, as the real file stores them.

``truth.json`` records what was planted: the parameters and seed; every class's style; for every
SALICON and HSB image its objects (class, polygon, bbox, area, centre, radius; HSB: the label, whose
object comes first); for the scanpath stimuli their objects (key object first), labels, the viewer
groups (a seeded permutation: two thirds explorative), each viewer's blend weight, the two
patterns and :data:`STRATEGIES`.
``truth.json`` is written last: its presence means the world is complete (:func:`ensure_demo`).

Every file is byte-identical for a seed (the ``.mat`` header's timestamp is replaced by fixed text).
The default sizes take about 6 s on one core and 5.5 MB. Run ``python -m hsi_core.demo ROOT`` (sizes as
``--n-salicon`` etc.) to write one; :func:`classification_set` draws single-glyph images in memory
for training the demo classifier.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io as _io
import json
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from scipy.io import savemat

from hsi_core.datasets.hsb import HSB_CLASSES as _HSB_CLASSES
from hsi_core.fixations import fixation_map, saliency_map
from hsi_core.io import atomic_write_bytes, atomic_write_json, atomic_write_text, save_image
from hsi_core.paths import demo_root


#: ImageNet wnids for the HSB classes (horse and sofa are PASCAL classes in HSB: the nearest
#: ImageNet classes, sorrel and studio couch, are used).
IMAGENET_WNIDS = {
    "ant": "n02219486", "zebra": "n02391049", "horse": "n02389026", "lion": "n02129165",
    "jellyfish": "n01910747", "snail": "n01944390", "lemon": "n07749582", "mushroom": "n07734744",
    "corn": "n12144580", "pizza": "n07873807", "laptop": "n03642806", "cellphone": "n02992529",
    "microphone": "n03759954", "sofa": "n04344873", "broom": "n02906734", "shovel": "n04208210",
    "umbrella": "n04507155", "harp": "n03495258", "tennis ball": "n04409515", "fountain": "n03388043",
}

_SHAPES = ("disc", "square", "diamond", "triangle", "cross", "hexagon", "star", "wide_ellipse",
           "tall_ellipse", "pentagon")
_TEXTURES = ("stripes", "dots", "checker", "solid")


@dataclass(frozen=True)
class ClassStyle:
    shape: str
    colour: tuple[float, float, float]
    texture: str


def _class_styles() -> dict[str, ClassStyle]:
    styles = {}
    for i, name in enumerate(_HSB_CLASSES):
        hue = (i * 0.381966) % 1.0  # golden-ratio hues: 20 well separated colours
        colour = tuple(float(c) for c in _hsv_to_rgb(hue, 0.85, 0.95 if i % 2 == 0 else 0.7))
        styles[name] = ClassStyle(_SHAPES[i % 10], colour, _TEXTURES[(i // 10) * 2 + (i % 2)])
    return styles


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


#: Each class's glyph: shape, colour and texture (the planted visual identity of the class).
CLASS_STYLES = _class_styles()


# ----------------------------------------------------------------------------- drawing
def shape_polygon(shape: str, cx: float, cy: float, radius: float, angle: float = 0.0) -> np.ndarray:
    """The outline of a glyph as ``(K, 2)`` ``(x, y)`` vertices."""
    t = np.linspace(0, 2 * np.pi, 33)[:-1]
    if shape == "disc":
        unit = np.c_[np.cos(t), np.sin(t)]
    elif shape == "wide_ellipse":
        unit = np.c_[np.cos(t), 0.55 * np.sin(t)]
    elif shape == "tall_ellipse":
        unit = np.c_[0.55 * np.cos(t), np.sin(t)]
    elif shape == "square":
        unit = np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]])
    elif shape == "diamond":
        unit = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], dtype=float)
    elif shape == "triangle":
        unit = np.array([[0, -0.95], [0.95, 0.75], [-0.95, 0.75]])
    elif shape == "cross":
        a, b = 0.32, 0.95
        unit = np.array([[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b],
                         [-a, a], [-b, a], [-b, -a], [-a, -a]])
    elif shape in ("hexagon", "pentagon"):
        k = 6 if shape == "hexagon" else 5
        s = np.linspace(0, 2 * np.pi, k + 1)[:-1] - np.pi / 2
        unit = np.c_[np.cos(s), np.sin(s)]
    elif shape == "star":
        s = np.linspace(0, 2 * np.pi, 11)[:-1] - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        unit = np.c_[r * np.cos(s), r * np.sin(s)]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return unit @ rot.T * radius + np.array([cx, cy])


def polygon_mask(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterise a polygon with pycocotools, exactly as a COCO loader will decode its annotation."""
    rles = mask_utils.frPyObjects([polygon.ravel().tolist()], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def _texture(style: ClassStyle, rows: slice, cols: slice, scale: float) -> np.ndarray:
    """The class's shading (1 = full colour) on a window of absolute pixel coordinates."""
    yy, xx = np.mgrid[rows, cols].astype(np.float64)
    period = max(4.0, scale / 3.0)
    if style.texture == "stripes":
        pattern = (np.sin(2 * np.pi * (xx + yy) / period) > 0).astype(float)
    elif style.texture == "dots":
        pattern = ((np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)) > 0.5).astype(float)
    elif style.texture == "checker":
        pattern = ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(float)
    else:
        pattern = np.zeros(xx.shape)
    return 1.0 - 0.45 * pattern


def _linear_upsampling(n_in: int, factor: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix of linear interpolation with aligned end points (the mapping of
    ``scipy.ndimage.zoom(order=1)`` onto ``n_in * factor`` samples), cropped to the first ``n_out``."""
    pos = np.arange(n_out) * (n_in - 1) / (n_in * factor - 1)
    left = np.minimum(np.floor(pos).astype(int), n_in - 2)
    frac = pos - left
    matrix = np.zeros((n_out, n_in))
    matrix[np.arange(n_out), left] = 1.0 - frac
    matrix[np.arange(n_out), left + 1] += frac
    return matrix


def _upsample(noise: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of ``(h, w, 3)`` noise by ``factor``, cropped to ``(height, width, 3)``."""
    rows = _linear_upsampling(noise.shape[0], factor, height)
    cols = _linear_upsampling(noise.shape[1], factor, width)
    return np.einsum("yi,ijc,xj->yxc", rows, noise, cols, optimize=True)


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth, low-contrast coloured texture: upsampled noise at two scales."""
    coarse = rng.random((height // 32 + 2, width // 32 + 2, 3))
    fine = rng.random((height // 8 + 2, width // 8 + 2, 3))
    img = 0.35 + 0.3 * _upsample(coarse, 32, height, width) + 0.1 * _upsample(fine, 8, height, width)
    return np.clip(img * rng.uniform(0.7, 1.0, size=3), 0, 1)


def draw_object(canvas: np.ndarray, label: str, cx: float, cy: float, radius: float, angle: float) -> dict[str, Any]:
    """Paint one glyph in place; return its record (class, polygon, bbox, area)."""
    height, width = canvas.shape[:2]
    style = CLASS_STYLES[label]
    polygon = shape_polygon(style.shape, cx, cy, radius, angle)
    mask = polygon_mask(polygon, height, width)
    ys, xs = np.nonzero(mask)
    window = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    colour = np.array(style.colour) * _texture(style, *window, radius)[..., None]
    inside = mask[window]
    canvas[window][inside] = colour[inside]
    bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    return {"label": label, "polygon": polygon.round(2).tolist(), "bbox": bbox, "area": int(mask.sum()),
            "centre": [float(cx), float(cy)], "radius": float(radius), "mask": mask}


def compose_scene(rng: np.random.Generator, height: int, width: int, labels: list[str],
                  radius_range: tuple[float, float]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A background with non-overlapping glyphs of the given classes."""
    canvas = background(rng, height, width)
    objects: list[dict[str, Any]] = []
    for label in labels:
        for _ in range(200):
            radius = rng.uniform(*radius_range)
            cx = rng.uniform(radius + 2, width - radius - 2)
            cy = rng.uniform(radius + 2, height - radius - 2)
            if all(np.hypot(cx - o["centre"][0], cy - o["centre"][1]) > radius + o["radius"] + 4 for o in objects):
                break
        objects.append(draw_object(canvas, label, cx, cy, radius, rng.uniform(-0.3, 0.3)))
    return (canvas * 255).round().astype(np.uint8), objects


# ----------------------------------------------------------------------------- viewing behaviour
def _points_in_object(rng: np.random.Generator, obj: dict[str, Any], n: int, spread: float) -> np.ndarray:
    cx, cy = obj["centre"]
    return rng.normal([cx, cy], spread * obj["radius"], size=(n, 2))


def free_viewing_points(rng: np.random.Generator, objects: list[dict[str, Any]], height: int, width: int,
                        n: int, centre_share: float = 0.25) -> np.ndarray:
    """Free viewing: a centre bias plus every object, larger objects drawing more fixations."""
    n_centre = rng.binomial(n, centre_share)
    centre = rng.normal([width / 2, height / 2], [width / 6, height / 6], size=(n_centre, 2))
    weights = np.sqrt([o["area"] for o in objects])
    picks = rng.choice(len(objects), size=n - n_centre, p=weights / weights.sum())
    parts = [centre] + [_points_in_object(rng, objects[i], int((picks == i).sum()), 0.45) for i in range(len(objects))]
    return _clip(np.concatenate(parts), height, width)


def explanation_points(rng: np.random.Generator, target: dict[str, Any], others: list[dict[str, Any]],
                       height: int, width: int, n: int) -> np.ndarray:
    """Explanation task (explorative viewers): most fixations spread over the labelled object."""
    n_other = rng.binomial(n, 0.1) if others else 0
    n_centre = rng.binomial(n - n_other, 0.05)
    parts = [_points_in_object(rng, target, n - n_other - n_centre, 0.5),
             rng.normal([width / 2, height / 2], [width / 6, height / 6], size=(n_centre, 2))]
    if n_other:
        parts.append(_points_in_object(rng, others[rng.integers(len(others))], n_other, 0.4))
    return _clip(np.concatenate(parts), height, width)


def _clip(points: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.clip(points, [0, 0], [width - 1, height - 1])


def scanpath(rng: np.random.Generator, rois: np.ndarray, spreads: np.ndarray, transition: np.ndarray,
             n_fixations: int, height: int, width: int, start: np.ndarray | None = None) -> np.ndarray:
    """One trial: a Markov chain over regions of interest (first ROI drawn from ``start``, uniform
    when None), Gaussian fixations within each, and fixation times. Returns ``(n, 4)`` rows
    ``x, y, start, duration`` (seconds)."""
    k = len(rois)
    state = rng.choice(k, p=start) if start is not None else rng.integers(k)
    states = []
    for _ in range(n_fixations):
        states.append(state)
        state = rng.choice(k, p=transition[state])
    states = np.array(states)
    xy = _clip(rois[states] + rng.normal(size=(n_fixations, 2)) * spreads[states, None], height, width)
    durations = rng.uniform(0.15, 0.4, n_fixations)
    saccades = rng.uniform(0.02, 0.05, n_fixations)
    starts = 0.1 + np.concatenate([[0.0], np.cumsum(durations + saccades)[:-1]])
    return np.c_[xy, starts, durations]


#: The planted viewing strategies (recorded in truth.json), built the way the EMHMM reference
#: study is (``../shared/reference/emhmm/golden/make_input.py``, whose two patterns these are, with
#: its lower ROI as our key object): both groups look at the **same three ROIs with the same
#: spread** (the key object and the two other objects; SD ``spread`` x the key object's radius),
#: so fixation dispersion does not separate them. They differ in where sequences start and in
#: transitions: explorative viewers start on the other objects and ping-pong between them,
#: focused viewers start on the key object and dwell (sticky, local re-fixations). Each viewer's
#: start/transition probabilities are blended toward the other group by a weight drawn from
#: ``blend`` (per viewer), and ROI centres are jittered per viewer (``jitter`` x radius).
#: ``explanation_pull``: in the explanation task every viewer's pattern moves this far toward the
#: focused one (the paper's task effect). ``explorative_share`` of the viewers are explorative.
STRATEGIES: dict[str, Any] = {
    "explorative": {"start": [0.05, 0.6, 0.35],
                    "transition": [[0.10, 0.45, 0.45], [0.15, 0.15, 0.70], [0.10, 0.75, 0.15]]},
    "focused": {"start": [0.8, 0.1, 0.1],
                "transition": [[0.6, 0.2, 0.2], [0.3, 0.6, 0.1], [0.3, 0.1, 0.6]]},
    "spread": 0.3, "jitter": 0.1, "blend": [0.0, 0.2], "explanation_pull": 0.5,
    "explorative_share": 2 / 3,
}


def _pattern(group: str) -> tuple[np.ndarray, np.ndarray]:
    """Start probabilities and transition matrix of a group's pure pattern (3 ROIs)."""
    plan = STRATEGIES[group]
    return np.array(plan["start"], dtype=np.float64), np.array(plan["transition"], dtype=np.float64)


def viewer_strategy(rng: np.random.Generator, group: str, task: str, target: dict[str, Any],
                    others: list[dict[str, Any]], height: int, width: int, blend: float = 0.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ROIs, their spreads, the transition matrix and the start probabilities of one viewer on one
    image: the group's pattern blended toward the other group by ``blend``, and in the explanation
    task pulled toward the focused pattern (:data:`STRATEGIES`). The ROIs are the key object's and
    the first two other objects' centres (image centre-ward points when an image has fewer),
    jittered per viewer; every ROI has the same spread."""
    if group not in ("explorative", "focused") or task not in ("free_viewing", "explanation"):
        raise ValueError(f"unknown viewer group {group!r} or task {task!r}")
    other = "focused" if group == "explorative" else "explorative"
    start, transition = _pattern(group)
    o_start, o_transition = _pattern(other)
    start = (1 - blend) * start + blend * o_start
    transition = (1 - blend) * transition + blend * o_transition
    if task == "explanation":
        f_start, f_transition = _pattern("focused")
        pull = STRATEGIES["explanation_pull"]
        start = (1 - pull) * start + pull * f_start
        transition = (1 - pull) * transition + pull * f_transition
    r = float(target["radius"])
    centres = [target["centre"]] + [o["centre"] for o in others[:2]]
    while len(centres) < 3:
        centres.append([width / 2 + (len(centres) - 1.5) * 2 * r, height / 2])
    rois = np.array(centres, dtype=np.float64) + rng.normal(0, STRATEGIES["jitter"] * r, (3, 2))
    spreads = np.full(3, STRATEGIES["spread"] * r)
    return rois, spreads, transition, start


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    """An object's record for truth.json (everything but the raster mask)."""
    return {k: v for k, v in obj.items() if k != "mask"}


# ----------------------------------------------------------------------------- writers
def _coco_annotation(ann_id: int, image_id: int, category_id: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "iscrowd": 0,
            "segmentation": [np.asarray(obj["polygon"]).ravel().round(2).tolist()],
            "area": float(obj["area"]), "bbox": obj["bbox"]}


def _categories() -> list[dict[str, Any]]:
    return [{"id": i + 1, "name": name, "supercategory": "hsb"} for i, name in enumerate(_HSB_CLASSES)]


def _write_salicon(root: Path, rng: np.random.Generator, n_images: int, n_workers: int, truth: dict,
                   n_points: int = 35) -> None:
    height, width = 480, 640
    for split, id_offset in (("train", 100000), ("val", 200000)):
        images, fixation_anns, coco_anns = [], [], []
        count = n_images if split == "train" else max(2, n_images // 4)
        for k in range(count):
            image_id = id_offset + k
            file_name = f"COCO_{split}2014_{image_id:012d}.jpg"
            labels = list(rng.choice(_HSB_CLASSES, size=rng.integers(2, 5), replace=False))
            pixels, objects = compose_scene(rng, height, width, labels, (40, 90))
            save_image(root / "salicon" / "images" / split / file_name, pixels)
            images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            for worker in range(n_workers):
                lo, hi = round(n_points * 5 / 7), round(n_points * 9 / 7)  # 25-45 at the default 35
                pts = free_viewing_points(rng, objects, height, width, n=int(rng.integers(lo, hi)))
                cols, rows = np.rint(pts[:, 0]).astype(int) + 1, np.rint(pts[:, 1]).astype(int) + 1  # 1-based
                pairs = np.c_[rows, cols] if split == "train" else np.c_[cols, rows]  # the real files' quirk
                fixation_anns.append({"id": len(fixation_anns) + 1, "image_id": image_id, "worker_id": worker,
                                      "fixations": pairs.tolist()})
            for obj in objects:
                coco_anns.append(_coco_annotation(len(coco_anns) + 1, image_id, _HSB_CLASSES.index(obj["label"]) + 1, obj))
            truth["salicon"][file_name] = [_public(o) for o in objects]
        info = {"description": "hsi-book demo world (synthetic)", "version": "1.0"}
        atomic_write_json(root / "salicon" / "annotations" / f"fixations_{split}2014.json",
                          {"info": info, "type": "fixations", "images": images, "annotations": fixation_anns, "licenses": []},
                          indent=None)
        atomic_write_json(root / "coco" / "annotations" / f"instances_{split}2014.json",
                          {"info": info, "images": images, "annotations": coco_anns, "categories": _categories(), "licenses": []},
                          indent=None)


def _write_hsb(root: Path, rng: np.random.Generator, per_class: int, n_viewers: int, truth: dict) -> None:
    height, width = 260, 200
    sigma = 10.5  # 0.5 dva: 21 px at the HSB frame's full size, halved with the image
    rows = []
    for label in _HSB_CLASSES:
        folds = rng.permutation(np.arange(per_class) % 5)
        for k in range(per_class):
            second = rng.random() < 0.5
            labels = [label] + ([str(rng.choice([c for c in _HSB_CLASSES if c != label]))] if second else [])
            pixels, objects = compose_scene(rng, height, width, labels, (28, 48))
            name = f"{label.replace(' ', '_')}_{k}"
            rel = f"images/{label.replace(' ', '_')}/{name}.jpg"
            save_image(root / "hsb" / rel, pixels)
            points = np.concatenate([explanation_points(rng, objects[0], objects[1:], height, width, n=int(rng.integers(10, 16)))
                                     for _ in range(n_viewers)])
            sal = saliency_map(fixation_map(points, (height, width)), sigma)
            save_image(root / "hsb" / "saliency" / label.replace(" ", "_") / f"{name}.png", (sal * 255).round().astype(np.uint8))
            rows.append({"image": rel, "label": label, "fold": int(folds[k])})
            truth["hsb"][rel] = {"label": label, "objects": [_public(o) for o in objects]}
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["image", "label", "fold"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(root / "hsb" / "labels.csv", buffer.getvalue())


def _write_imagenet(root: Path, rng: np.random.Generator) -> None:
    for label in _HSB_CLASSES:
        pixels, _ = compose_scene(rng, 224, 224, [label], (45, 75))
        save_image(root / "imagenet" / f"{IMAGENET_WNIDS[label]}_{label.replace(' ', '_')}.JPEG", pixels)


def _mat_bytes(variables: dict[str, Any]) -> bytes:
    """A MATLAB 5 file of ``variables``, byte-identical across runs: scipy stamps the creation time
    into the 116-byte text header, which is replaced here by a fixed description."""
    buffer = _io.BytesIO()
    savemat(buffer, variables, do_compression=True)
    data = bytearray(buffer.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, written by hsi_core.demo (synthetic demo world)".ljust(116)
    return bytes(data)


def _write_scanpaths(root: Path, rng: np.random.Generator, n_images: int, n_viewers: int, truth: dict) -> None:
    height, width = 240, 320
    n_explorative = max(1, min(n_viewers - 1, int(round(STRATEGIES["explorative_share"] * n_viewers))))
    order = rng.permutation(n_viewers)
    groups = ["explorative" if order[v] < n_explorative else "focused" for v in range(n_viewers)]
    blends = rng.uniform(*STRATEGIES["blend"], n_viewers).round(4)
    cells = {task: np.empty((n_images, n_viewers), dtype=object) for task in ("free_viewing", "explanation")}
    labels, stimuli = [], {}
    for i in range(n_images):
        names = list(rng.choice(_HSB_CLASSES, size=3, replace=False))
        pixels, objects = compose_scene(rng, height, width, names, (30, 50))
        save_image(root / "scanpaths" / "stimuli" / f"{i + 1:03d}.jpg", pixels)
        labels.append({"image": f"{i + 1:03d}.jpg", "label": names[0]})
        stimuli[f"{i + 1:03d}.jpg"] = [_public(o) for o in objects]  # the first is the labelled (key) object
        for task, cell in cells.items():
            for v, group in enumerate(groups):
                rois, spreads, transition, start = viewer_strategy(rng, group, task, objects[0], objects[1:],
                                                                   height, width, blend=float(blends[v]))
                trial = scanpath(rng, rois, spreads, transition, int(rng.integers(10, 19)), height, width, start)
                # stored as the real NUS Scene file does: row (y), col (x), start, duration
                cell[i, v] = np.c_[trial[:, 1], trial[:, 0], trial[:, 2], trial[:, 3]].round(4)
    for task, cell in cells.items():
        atomic_write_bytes(root / "scanpaths" / task / "fixations.mat", _mat_bytes({"fixations": cell}))
    for name, fields, rows in (
        ("labels.csv", ["image", "label"], labels),
        ("viewers.csv", ["viewer", "group"], [{"viewer": v, "group": g} for v, g in enumerate(groups)]),
    ):
        buffer = _io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(root / "scanpaths" / name, buffer.getvalue())
    patterns = {g: {"start": _pattern(g)[0].tolist(), "transition": _pattern(g)[1].tolist()}
                for g in ("explorative", "focused")}
    truth["scanpaths"] = {"viewer_groups": groups, "blend": blends.tolist(), "labels": labels, "height": height,
                          "width": width, "objects": stimuli, "strategies": STRATEGIES, "patterns": patterns}


_README = """# hsi-book demo world (synthetic)

Generated by `hsi_core.demo.generate_demo` with the parameters in `truth.json`. Every image, fixation
and label here is synthetic, drawn from a seed, and written in the real datasets' formats; see the
module docstring of `hsi_core/demo.py` for what was planted.
"""


#: Default sizes (the book's demo scale; about 6 s to generate on one CPU core).
_SIZE_DEFAULTS = dict(n_salicon=24, n_salicon_workers=12, n_hsb_per_class=8, n_hsb_viewers=8,
                      n_scan_images=24, n_viewers=12, n_salicon_points=35)
#: SALICON at paper size for benchmarks (real files: 640x480, about 60 workers per image, 120 points
#: per worker in the train release): ``generate_demo(root, **SALICON_PAPER_SIZE)``.
SALICON_PAPER_SIZE = dict(n_salicon_workers=60, n_salicon_points=120)


def generate_demo(
    root: str | Path,
    *,
    n_salicon: int = 24,
    n_salicon_workers: int = 12,
    n_hsb_per_class: int = 8,
    n_hsb_viewers: int = 8,
    n_scan_images: int = 24,
    n_viewers: int = 12,
    seed: int = 0,
    n_salicon_points: int = 35,
) -> Path:
    """Write the demo world under ``root`` (byte-identical for a seed) and return ``root``.

    ``n_salicon`` SALICON train images (and ``max(2, n_salicon // 4)`` val images) with
    ``n_salicon_workers`` workers each, each with about ``n_salicon_points`` points (uniform in
    [5/7, 9/7] of it; :data:`SALICON_PAPER_SIZE` for real SALICON's density); ``n_hsb_per_class`` HSB
    images per class (at least 5: one per fold) whose maps pool ``n_hsb_viewers`` explorative viewers; ``n_scan_images`` scanpath stimuli
    seen by ``n_viewers`` viewers (two thirds explorative) in each of two tasks."""
    root = Path(root)
    if n_hsb_per_class < 5:
        raise ValueError(f"{root}: n_hsb_per_class={n_hsb_per_class}; need at least 5, so that every class "
                         "is in every one of 5 folds")
    if n_viewers < 2 or n_scan_images < 1 or n_salicon < 1 or n_salicon_workers < 1 or n_hsb_viewers < 1:
        raise ValueError(f"{root}: need at least 2 scanpath viewers, 1 scanpath image, 1 SALICON image, "
                         f"1 SALICON worker and 1 HSB viewer (got n_viewers={n_viewers}, "
                         f"n_scan_images={n_scan_images}, n_salicon={n_salicon}, "
                         f"n_salicon_workers={n_salicon_workers}, n_hsb_viewers={n_hsb_viewers})")
    if n_salicon_points < 2:
        raise ValueError(f"{root}: n_salicon_points={n_salicon_points}; need at least 2 points per SALICON worker")
    params = dict(n_salicon=n_salicon, n_salicon_workers=n_salicon_workers, n_hsb_per_class=n_hsb_per_class,
                  n_hsb_viewers=n_hsb_viewers, n_scan_images=n_scan_images, n_viewers=n_viewers, seed=seed,
                  n_salicon_points=n_salicon_points)
    truth: dict[str, Any] = {"parameters": params, "classes": list(_HSB_CLASSES),
                             "class_styles": {k: vars(v) for k, v in CLASS_STYLES.items()}, "salicon": {}, "hsb": {}}
    seeds = np.random.SeedSequence(seed).spawn(4)
    _write_salicon(root, np.random.default_rng(seeds[0]), n_salicon, n_salicon_workers, truth, n_salicon_points)
    _write_hsb(root, np.random.default_rng(seeds[1]), n_hsb_per_class, n_hsb_viewers, truth)
    _write_imagenet(root, np.random.default_rng(seeds[2]))
    _write_scanpaths(root, np.random.default_rng(seeds[3]), n_scan_images, n_viewers, truth)
    atomic_write_text(root / "README.md", _README)
    truth["generator"] = generator_fingerprint()
    atomic_write_json(root / "truth.json", truth)  # written last: its presence means the world is whole
    return root


def generator_fingerprint() -> str:
    """A hash of this generator's source: a world written by another version is out of date."""
    return hashlib.sha256(Path(__file__).read_bytes() + repr(_HSB_CLASSES).encode()).hexdigest()[:16]


def ensure_demo(root: str | Path | None = None, **kwargs: Any) -> Path:
    """The demo world at ``root`` (default ``hsi_core.paths.demo_root()``), generated if missing or
    written by another version of this generator or with other sizes than those given in ``kwargs``
    (then it is rebuilt beside the old one and swapped in, so a reader never sees a half-old world)."""
    root = Path(root) if root is not None else demo_root()
    truth_path = root / "truth.json"
    wanted = dict(kwargs)
    if truth_path.is_file():
        truth = json.loads(truth_path.read_text())
        planted = truth.get("parameters", {})
        if truth.get("generator") == generator_fingerprint() and all(planted.get(k) == v for k, v in wanted.items()):
            return root
    fresh = root.with_name(f".{root.name}.new-{os.getpid()}")
    shutil.rmtree(fresh, ignore_errors=True)
    generate_demo(fresh, **kwargs)
    stale = root.with_name(f".{root.name}.old-{os.getpid()}")
    if root.exists():
        os.replace(root, stale)
    os.replace(fresh, root)
    shutil.rmtree(stale, ignore_errors=True)
    return root


def load_truth(root: str | Path) -> dict[str, Any]:
    """The planted truth of a demo world."""
    path = Path(root) / "truth.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no demo world here; create one with hsi_core.demo.ensure_demo({str(root)!r})")
    return json.loads(path.read_text())


def classification_set(n_per_class: int, size: int = 64, seed: int = 0, *,
                       tensors: bool = False) -> tuple[Any, Any]:
    """In-memory images of single glyphs for training a small classifier: ``(N, size, size, 3)`` uint8
    and their class indices into :data:`hsi_core.datasets.hsb.HSB_CLASSES`; with ``tensors=True`` a float ``(N, 3, size, size)``
    tensor in [0, 1] and a long tensor (the form ``hsi_core.models.classifier`` trains on)."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for c, label in enumerate(_HSB_CLASSES):
        for _ in range(n_per_class):
            pixels, _ = compose_scene(rng, size, size, [label], (size * 0.2, size * 0.38))
            images.append(pixels)
            targets.append(c)
    if tensors:
        import torch

        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
        return x, torch.tensor(targets, dtype=torch.long)
    return np.stack(images), np.array(targets)


def __getattr__(name: str) -> Any:
    # the old home of HSB_CLASSES, kept for one release
    if name == "HSB_CLASSES":
        warnings.warn("hsi_core.demo.HSB_CLASSES is deprecated and goes in the next release: import HSB_CLASSES "
                      "from hsi_core.datasets (its home, hsi_core.datasets.hsb)", DeprecationWarning, stacklevel=2)
        return _HSB_CLASSES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """``python -m hsi_core.demo [ROOT] [--seed S] [--n-salicon N ...]``: write a demo world."""
    parser = argparse.ArgumentParser(description="Write the hsi-book demo world (synthetic, deterministic).")
    parser.add_argument("root", nargs="?", default=str(demo_root()), help="output folder (default: data/demo)")
    parser.add_argument("--seed", type=int, default=0)
    for name, default in _SIZE_DEFAULTS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    args = parser.parse_args(argv)
    sizes = {name: getattr(args, name) for name in _SIZE_DEFAULTS}
    generate_demo(args.root, seed=args.seed, **sizes)
    print(f"demo world written to {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
