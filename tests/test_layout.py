"""CONTRIBUTING.md's layout is the contract a contributor reads first: it must name every module of
``hsi_core`` (a module added without a line there fails this test) and nothing that is not there."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def layout_block() -> str:
    text = (REPO / "CONTRIBUTING.md").read_text()
    match = re.search(r"## Layout\n```\n(.*?)```", text, re.S)
    assert match, "CONTRIBUTING.md has no ## Layout code block"
    # the library's part: from hsi_core/ to the first top-level entry after it
    return match.group(1).split("\nnotebooks/")[0]


def test_layout_names_every_module():
    block = layout_block()
    missing = []
    for path in sorted((REPO / "hsi_core").rglob("*.py")):
        rel = path.relative_to(REPO / "hsi_core")
        if path.name == "__init__.py" or "reference_data" in rel.parts:
            continue
        if not re.search(rf"\b{re.escape(path.name)}\b", block):
            missing.append(str(rel))
    assert not missing, f"CONTRIBUTING.md's layout does not name: {missing}"


def test_layout_names_no_module_that_is_gone():
    block = layout_block()
    named = set(re.findall(r"\b([a-z_0-9]+\.py)\b", block))
    present = {p.name for p in (REPO / "hsi_core").rglob("*.py")}
    assert named <= present, f"CONTRIBUTING.md's layout names modules that do not exist: {sorted(named - present)}"
