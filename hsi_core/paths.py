"""Where the project looks for data: the real samples beside the repository and the demo world."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    """The real sample data: ``$HSI_SHARED_DATA`` or ``../shared/data`` beside the repository.

    Returns ``None`` when neither exists (a user's fresh clone), so callers can skip cleanly, and when
    ``$HSI_SHARED_DATA`` is ``off``: the book and the tests then see what a fresh clone sees (CI builds
    the book both ways).
    """
    log = os.environ.get("HSI_DATA_ACCESS_LOG")
    if log:  # the book's build records which chapters asked, to know when a cached chapter is still valid
        with open(log, "a", encoding="utf-8") as handle:
            handle.write("shared_data_root\n")
    env = os.environ.get("HSI_SHARED_DATA")
    if env is not None and env.strip().lower() in ("off", "none", "0"):
        return None
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def shared_folder(name: str) -> Path | None:
    """A folder of ``shared/`` beside the data root: ``"papers"`` (the two papers' text) or
    ``"reference"`` (reference outputs). ``None`` where the samples are absent or it does not exist."""
    root = shared_data_root()
    if root is None:
        return None
    folder = root.parent / name
    return folder if folder.is_dir() else None


def demo_root() -> Path:
    """Where the generated demo world lives: ``$HSI_DEMO_ROOT`` or ``data/demo`` in the repository."""
    env = os.environ.get("HSI_DEMO_ROOT")
    return Path(env) if env else REPO_ROOT / "data" / "demo"

