"""Which data a chapter reads: the real samples beside the repository when present, else the demo
world, chosen by one call so that every chapter makes the same choice and says which it made.

A path given as a parameter always wins; ``"auto"`` means the real sample set when
:func:`hsi_core.paths.shared_data_root` finds it, the demo world (generated on first use) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hsi_core import datasets, demo
from hsi_core.datasets import FixationRecord
from hsi_core.paths import shared_data_root


@dataclass
class FreeViewing:
    """Free-viewing fixation records of one data source."""

    name: str  #: e.g. "NUS Scene" or "demo world (synthetic)"
    root: Path
    is_demo: bool
    records: list[FixationRecord] = field(repr=False)

    def summary(self) -> str:
        kind = "synthetic demo world" if self.is_demo else "real sample data"
        return f"{self.name} ({kind}, {len(self.records)} images, {self.root})"


def _demo_free_viewing(root: Path) -> list[FixationRecord]:
    """Every free-viewing image of the demo world: SALICON train and val, and the scanpath stimuli."""
    records = []
    for split in ("train", "val"):
        records += datasets.salicon_records(root / f"salicon/annotations/fixations_{split}2014.json",
                                            root / f"salicon/images/{split}")
    stimuli = sorted((root / "scanpaths/stimuli").glob("*.jpg"))
    records += datasets.scanpath_records(root / "scanpaths/free_viewing/fixations.mat", stimuli)
    return records


def free_viewing(data_root: str | Path | None = "auto", *, demo_root: str | Path | None = None) -> FreeViewing:
    """Images with free-viewing fixations for training and scoring saliency models.

    ``data_root``: a NUS Scene folder (``stimuli/``, ``tidy/fixations.mat``); ``"auto"``: the shared
    NUS Scene sample when present, else the demo world; ``None`` or ``"demo"``: the demo world.
    """
    if data_root == "auto":
        shared = shared_data_root()
        data_root = shared / "nus-scene" if shared is not None and (shared / "nus-scene").is_dir() else None
    if data_root is None or data_root == "demo":
        world = demo.ensure_demo(demo_root)
        return FreeViewing("demo world (synthetic)", world, True, _demo_free_viewing(world))
    root = Path(data_root)
    records = datasets.scanpath_records(root / "tidy/fixations.mat", datasets.nus_scene_stimuli(root))
    return FreeViewing("NUS Scene", root, False, records)


def shared_subset(name: str, parameter: str | Path | None = "auto") -> Path | None:
    """A real sample set by folder name (e.g. ``"mit1003-subset"``): the parameter's path when given,
    the shared sample when ``"auto"`` and present, else ``None`` (the chapter then shows the paper's
    values only, and says so)."""
    if parameter is None:
        return None
    if parameter != "auto":
        path = Path(parameter)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such folder for {name}; give the dataset's local root or None")
        return path
    shared = shared_data_root()
    return shared / name if shared is not None and (shared / name).exists() else None


def split_records(records: Sequence[Any], n_train: int, n_test: int, *, seed: int = 0,
                  where: str = "split") -> tuple[list[Any], list[Any]]:
    """A seeded, disjoint split of ``records`` into at most ``n_train`` training and ``n_test`` held-out
    items. With fewer records than asked for, both shrink in proportion (the held-out set keeps at
    least one); fewer than two records is an error, never an empty split."""
    n = len(records)
    if n < 2:
        raise ValueError(f"{where}: {n} record(s); a train/test split needs at least 2")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"{where}: n_train={n_train} and n_test={n_test} must both be at least 1")
    if n_train + n_test > n:
        n_test = max(1, round(n * n_test / (n_train + n_test)))
        n_train = n - n_test
    order = np.random.default_rng(seed).permutation(n)
    return [records[i] for i in order[:n_train]], [records[i] for i in order[n - n_test:]]
