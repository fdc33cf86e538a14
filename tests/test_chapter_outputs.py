"""A chapter's printed result is the library's result: chapter 1 (the cheapest) is executed on a demo
world as a fresh clone sees it, and a glued number is compared with one computed here from the
loaders and a metric primitive, without the chapter's table code.

Catches a chapter that glues the wrong column, dataset or row (e.g. the uniform map's AUC, or the
explanation task instead of free viewing), aggregates differently from the table it prints, or
stops executing."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from hsi_core import datasets, metrics
from hsi_core.baselines import centre_bias_map

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def glued(notebook_path: Path) -> dict[str, object]:
    """Every value a notebook glued (myst-nb stores it as a display output named in its metadata)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    values: dict[str, object] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            if "name" in scrapbook:
                values[scrapbook["name"]] = output["data"][scrapbook.get("mime_prefix", "") + "text/plain"]
    return values


def test_chapter_1_glues_the_centre_bias_auc_it_computes(demo_world, tmp_path, monkeypatch):
    import build_book

    n_images, max_side = 4, 160
    monkeypatch.setenv("HSI_SHARED_DATA", "off")
    build_book.execute_here("01_data_and_metrics", {"demo_root": str(demo_world), "images_per_dataset": n_images,
                                                    "max_side": max_side, "n_splits": 5}, tmp_path)
    values = glued(tmp_path / "01_data_and_metrics.ipynb")
    reported = float(values["centre_auc_judd_demo"])

    records = datasets.salicon_records(demo_world / "salicon/annotations/fixations_train2014.json",
                                       demo_world / "salicon/images/train", limit=n_images)
    scores = []
    for record in records:
        scaled = record.scaled(max_side)
        scores.append(metrics.auc_judd(centre_bias_map(scaled.height, scaled.width), scaled.fixation_map()))
    expected = float(np.mean(scores))
    # The chapter rasterises through the evaluation pool, here through the record itself: the two put a
    # fixation in the same pixel up to rounding at a cell edge, which moves a smooth map's AUC by far
    # less than 0.005; a wrong row or column moves it by more than 0.05 on this world.
    assert reported == pytest.approx(expected, abs=0.005)
    assert values["centre_above_chance_demo"].strip("'\"") == ("above" if expected > 0.5 else "not above")
