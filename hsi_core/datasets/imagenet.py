"""ImageNet (image-net.org, ILSVRC2012): a folder of ``<wnid>_<name>.JPEG`` (one per class), or the official
val layout (``ILSVRC2012_val_*.JPEG``) with ``LOC_val_solution.csv`` or a ``val.txt`` label file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hsi_core.datasets.common import SOURCES, require_file


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
        return require_file(Path(synset_file), "ImageNet", "synset mapping")
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
    require_file(root, "ImageNet", "folder")
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
