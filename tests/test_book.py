"""The book's structure: every chapter in the table of contents has a notebook source with an H1
and a ``parameters`` cell, and every notebook source is in the table of contents."""

from __future__ import annotations

import re
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


# ----------------------------------------------------------------------------- equations, citations, API links
_LABELLED_EQUATION = re.compile(r"^\$\$[ \t]*\((?P<label>[\w.-]+)\)[ \t]*$", re.M)
_ROLE = re.compile(r"\{(?P<role>cite(?::[pt])?|eq|py:func|py:class|py:meth|py:mod)\}`(?P<target>[^`]+)`")


def _markdown(name: str) -> str:
    notebook = jupytext.read(REPO / "notebooks" / f"{name}.py")
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")


def _roles(text: str, *roles: str) -> list[str]:
    return [m.group("target") for m in _ROLE.finditer(text) if m.group("role") in roles]


def _bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", (REPO / "book" / "references.bib").read_text(), re.M))


def _labels() -> set[str]:
    return {m.group("label") for name in SOURCES for m in _LABELLED_EQUATION.finditer(_markdown(name))}


def _documented_where_defined(target: str) -> str | None:
    """None if ``target`` (``hsi_core.module.name`` or ``hsi_core.module.Class.method``) is an attribute of
    the module that defines it, else why not: the API reference documents each object once, in its
    defining module, so a re-exported path (``hsi_core.models.build_model``) would not resolve there."""
    import importlib

    parts = target.split(".")
    if parts[0] != "hsi_core":
        return "not in hsi_core"
    for split in range(len(parts) - 1, 0, -1):
        module_name, attributes = ".".join(parts[:split]), parts[split:]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        obj = module
        try:
            for attribute in attributes:
                obj = getattr(obj, attribute)
        except AttributeError:
            return f"{module_name} has no attribute {'.'.join(attributes)}"
        defined_in = getattr(getattr(module, attributes[0]), "__module__", module_name)
        if defined_in != module_name:
            return f"{'.'.join(attributes)} is defined in {defined_in}; link {defined_in}.{'.'.join(attributes)}"
        return None
    return "no importable module"


@pytest.mark.parametrize("name", SOURCES)
def test_chapter_typesets_an_equation_and_cites(name):
    """Each chapter shows at least one labelled equation ($$ ... $$ (label)), refers to one with {eq},
    links one to its function with {py:func} or {py:class}, and cites with {cite} from the bibliography."""
    text = _markdown(name)
    assert _LABELLED_EQUATION.search(text), f"{name}: no labelled equation"
    assert _roles(text, "eq"), f"{name}: no {{eq}} reference"
    assert _roles(text, "py:func", "py:class"), f"{name}: no link from an equation to the API reference"
    cited = [key.strip() for group in _roles(text, "cite", "cite:p", "cite:t") for key in group.split(",")]
    assert cited, f"{name}: no {{cite}}"
    unknown = set(cited) - _bib_keys()
    assert not unknown, f"{name}: cites {sorted(unknown)}, not in book/references.bib"


def test_each_chapter_cites_its_paper():
    """The HSI chapters cite the HSI paper, the log-gabor ones the log-gabor paper (by the toc's parts)."""
    import yaml

    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    paper_of = {"HSI": "yang2022hsi", "log-gabor": "malladi2021deriving"}
    for part in toc["parts"]:
        key = next((k for word, k in paper_of.items() if word in part["caption"]), None)
        for entry in part["chapters"] if key else []:
            name = entry["file"].split("/", 1)[1]
            cited = {k.strip() for g in _roles(_markdown(name), "cite", "cite:p", "cite:t") for k in g.split(",")}
            assert key in cited, f"{name} does not cite {key}"


def test_eq_references_name_existing_labels():
    labels = _labels()
    for name in SOURCES:
        missing = set(_roles(_markdown(name), "eq")) - labels
        assert not missing, f"{name}: {{eq}} to unknown labels {sorted(missing)}"


@pytest.mark.parametrize("name", SOURCES)
def test_api_links_resolve(name):
    """Every {py:func}/{py:class} target in a chapter imports and is an attribute of the module that
    defines it: the dangling reference that fails the book build, caught without building."""
    targets = _roles(_markdown(name), "py:func", "py:class", "py:meth", "py:mod")
    problems = {t: why for t in targets if (why := _documented_where_defined(t.lstrip("~"))) is not None}
    assert not problems, f"{name}: {problems}"
