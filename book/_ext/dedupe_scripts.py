"""Sphinx extension: drop repeated <script> entries from each page.

With jupyter-book 1.0.4, sphinx-thebe 0.3.1 and sphinx-togglebutton add their inline scripts twice;
the second ``const THEBE_JS_URL`` is a SyntaxError in every page's console (found by
scripts/check_book.py). Identical entries are kept once.
"""

from __future__ import annotations

from typing import Any


def _dedupe(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        filename = str(getattr(script, "filename", script) or "")  # the same inline script: None or ""
        key = (filename, tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
