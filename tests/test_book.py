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


def test_chapter_cache_key_follows_source_parameters_and_library(tmp_path, monkeypatch):
    """A cached chapter is reused only when its source, its parameters and the library are unchanged,
    and, if it read the real samples, only where they are in the same state."""
    import build_book

    monkeypatch.setattr(build_book, "CACHE", tmp_path / "cache")
    name = SOURCES[0]
    key = build_book.chapter_key(name, {}, "lib-a")
    assert key == build_book.chapter_key(name, {}, "lib-a")
    assert key != build_book.chapter_key(name, {"epochs": 2}, "lib-a")
    assert key != build_book.chapter_key(name, {}, "lib-b")
    assert key != build_book.chapter_key(SOURCES[1], {}, "lib-a")
    executed = tmp_path / "executed.ipynb"
    executed.write_text("{}")
    monkeypatch.setenv("HSI_SHARED_DATA", "off")
    build_book.store(name, key, executed, asked_shared=True)
    assert build_book.cached(name, key) is not None
    assert build_book.cached(name, "another-key") is None
    monkeypatch.setenv("HSI_SHARED_DATA", str(tmp_path))  # the samples appear: the chapter must run again
    assert build_book.cached(name, key) is None
    build_book.store(name, key, executed, asked_shared=False)  # a chapter that never asked stays valid
    monkeypatch.setenv("HSI_SHARED_DATA", "off")
    assert build_book.cached(name, key) is not None


def test_requires_lines_are_read(tmp_path):
    import build_book

    source = tmp_path / "x.py"
    source.write_text("# %%\n# book-requires: 07_deep_saliency_models\nx = 1\n")
    assert build_book.requirements(source) == ["07_deep_saliency_models"]


def _parameter_names(name: str) -> set[str]:
    import ast as _ast

    notebook = jupytext.read(REPO / "notebooks" / f"{name}.py")
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    return {t.id for node in _ast.parse(cell.source).body if isinstance(node, _ast.Assign)
            for t in node.targets if isinstance(t, _ast.Name)}


def test_paper_scale_page_names_real_parameters():
    """Every command line on the 'Reproduce at paper scale' page sets parameters its chapter has (a
    renamed parameter would otherwise leave the page silently wrong), and every chapter has a line."""
    import re
    import shlex

    page = (REPO / "book" / "paper_scale.md").read_text()
    commands = [line.strip() for line in page.splitlines() if "scripts/build_book.py --only" in line]
    covered = set()
    for command in commands:
        words = shlex.split(command.strip("`").rstrip("\\"))
        prefix = words[words.index("--only") + 1]
        (name,) = [n for n in SOURCES if n.startswith(prefix)]
        covered.add(name)
        known = _parameter_names(name)
        for i, word in enumerate(words):
            if word in ("-p", "--parameter"):
                assert words[i + 1] in known, f"{name}: no parameter {words[i + 1]!r}"
    assert covered == set(SOURCES), f"chapters without a paper-scale command: {set(SOURCES) - covered}"
    assert re.search(r"^# ", page, re.M)
