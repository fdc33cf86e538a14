"""Sphinx extension for the API reference page (book/api.md).

- Puts the repository root first on ``sys.path`` so that autodoc imports this checkout's ``hsi_core``.
- Keeps the pages autosummary generates under ``book/api/`` in the build: jupyter-book's
  ``only_build_toc_files`` excludes every file not named in ``_toc.yml``, and on a second build the
  generated stubs exist already when that list is made (``config-inited``), so they would be excluded
  and the API page's toctree would point at excluded documents. They are reached from the API page's
  autosummary toctree instead.
- Documents a submodule as the module even where its package exports an attribute of the same name
  (``hsi_core.loggabor.reconstruct`` is the module of LG Eq. 2-5 and, in the package namespace, its
  function ``reconstruct``): autosummary looks the name up as an attribute first, which would give
  the function a page and lose the module.
- Scopes the build's warnings-as-errors (``-W -n``): a warning raised *inside a docstring* of
  ``hsi_core`` (a docstring's markup, a docstring's ``:func:`` to a private or unqualified name), or in
  a page autosummary generated from the docstrings, is listed in ``<build>/api-docstring-warnings.txt``
  and summarised in the log, and does not fail the book; the docstrings belong to the library and are
  fixed there. Everything else still fails it, in particular a chapter's ``{py:func}`` or
  ``{py:class}`` that names something the API reference does not document.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from sphinx.util import logging as sphinx_logging

REPO = Path(__file__).resolve().parents[2]
GENERATED = "api"  # book/api/: autosummary's output (git-ignored)

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _keep_generated(app: Any, config: Any) -> None:
    config.exclude_patterns = [p for p in config.exclude_patterns
                               if not (p == GENERATED or p.startswith(GENERATED + "/"))]


def _prefer_submodules() -> None:
    import importlib
    import importlib.util

    from sphinx.ext import autosummary

    if getattr(autosummary._import_by_name, "_hsi_prefers_modules", False):
        return
    original = autosummary._import_by_name

    def import_by_name(name: str, grouped_exception: bool = True) -> tuple[Any, Any, str]:
        if name.startswith("hsi_core."):
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError, AttributeError):
                spec = None
            if spec is not None:
                return importlib.import_module(name), None, name
        return original(name, grouped_exception)

    import_by_name._hsi_prefers_modules = True
    autosummary._import_by_name = import_by_name


def from_docstring(location: str | None) -> bool:
    """Whether a warning's location is a docstring of hsi_core or a page generated from them."""
    if not location:
        return False
    location = location.replace("\\", "/")
    return "docstring of hsi_core" in location or f"/book/{GENERATED}/" in location


class DocstringWarnings(logging.Filter):
    """Takes the docstrings' warnings out of the warning stream (before Sphinx counts them) and keeps them."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.translate = sphinx_logging.WarningLogRecordTranslator(app)
        self.kept: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.translate.filter(record)  # record.location: "path:line"
        location = getattr(record, "location", None)
        if from_docstring(location):
            self.kept.append(f"{location}: {record.getMessage()}")
            return False
        return True


def _install_filter(app: Any) -> None:
    kept = DocstringWarnings(app)
    for handler in logging.getLogger(sphinx_logging.NAMESPACE).handlers:
        if isinstance(handler, sphinx_logging.WarningStreamHandler):
            handler.filters.insert(0, kept)
    app._hsi_docstring_warnings = kept


def _report(app: Any, exception: Exception | None) -> None:
    found = getattr(app, "_hsi_docstring_warnings", None)
    if found is None:
        return
    kept = found.kept
    out = Path(app.outdir).parent / "api-docstring-warnings.txt"
    out.write_text("".join(sorted(set(line + "\n" for line in kept))))
    sphinx_logging.getLogger(__name__).info(
        f"[api] {len(set(kept))} warnings in hsi_core docstrings (not fatal; listed in {out})")


def setup(app: Any) -> dict[str, Any]:
    _prefer_submodules()
    app.connect("config-inited", _keep_generated, priority=900)  # after sphinx-external-toc (500)
    app.connect("builder-inited", lambda app: _install_filter(app), priority=0)  # before autosummary writes
    app.connect("build-finished", _report)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
