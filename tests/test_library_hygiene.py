"""What a reader who copies from ``hsi_core`` relies on, checked on the source: one definition per
top-level name in a module (a second ``def __getattr__`` silently hides the first's deprecated
names), no module importing another's underscored names, and no tracker references in docstrings."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[1] / "hsi_core"
MODULES = sorted(p for p in LIBRARY.rglob("*.py") if "reference_data" not in p.parts)


def _id(path: Path) -> str:
    return str(path.relative_to(LIBRARY))


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_each_top_level_name_is_defined_once(path):
    tree = ast.parse(path.read_text())
    names = Counter(node.name for node in tree.body
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
    assert not [n for n, k in names.items() if k > 1], f"{_id(path)} defines {[n for n, k in names.items() if k > 1]} twice"


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_no_underscored_name_is_imported_from_another_module(path):
    tree = ast.parse(path.read_text())
    private = [f"{node.module}.{alias.name}" for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("hsi_core"))
               for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not private, f"{_id(path)} imports private names {private}"


def test_no_tracker_references_in_the_library():
    hits = [f"{_id(p)}:{i}" for p in MODULES for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(r"\bissue\s*#?\d+|#\d+ item", line, re.I)]
    assert not hits, f"tracker references in hsi_core: {hits}"
