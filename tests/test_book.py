"""The book's structure: every chapter in the table of contents has a notebook source with an H1
and a ``parameters`` cell, and every notebook source is in the table of contents."""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from build_book import chapters_from_toc, parse_value  # noqa: E402

CHAPTERS = chapters_from_toc(REPO / "book" / "_toc.yml")
SOURCES = sorted(p.stem for p in (REPO / "notebooks").glob("*.py"))


def test_toc_and_sources_agree():
    assert sorted(CHAPTERS) == SOURCES


@pytest.mark.parametrize("name", SOURCES)
def test_notebook_has_h1_and_parameters(name):
    notebook = jupytext.read(REPO / "notebooks" / f"{name}.py")
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), "first cell must be an H1"
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"


def test_parameter_values_are_parsed_as_python():
    assert parse_value("3") == 3 and parse_value("'cuda'") == "cuda" and parse_value("cuda") == "cuda"
    assert parse_value("[1, 2]") == [1, 2] and parse_value("None") is None
