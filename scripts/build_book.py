"""Execute the book's notebooks with papermill and build the HTML with jupyter-book.

The table of contents (book/_toc.yml) is the list of chapters: an entry ``chapters/NN_topic`` is
executed from ``notebooks/NN_topic.py`` (jupytext py:percent) into ``book/chapters/NN_topic.ipynb``.
Notebooks run with the repository root as working directory, at the demo scale of their
``parameters`` cell unless parameters are given:

    python scripts/build_book.py                       # every chapter, then the HTML
    python scripts/build_book.py --only 05 -p device cuda -p n_images 1000
    python scripts/build_book.py --no-html             # execute only

A failing cell stops the build with the notebook's name, the cell's number and the error.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import papermill
import yaml

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"


def chapters_from_toc(toc_path: Path) -> list[str]:
    """Every ``chapters/...`` file named in the table of contents, in order."""
    toc = yaml.safe_load(toc_path.read_text())
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            entry = node.get("file")
            if isinstance(entry, str) and entry.startswith("chapters/"):
                found.append(entry.split("/", 1)[1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    return found


def parse_value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def execute(name: str, parameters: dict[str, object]) -> float:
    source = REPO / "notebooks" / f"{name}.py"
    if not source.is_file():
        raise SystemExit(f"book/_toc.yml names chapters/{name}, but {source.relative_to(REPO)} does not exist")
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out_dir = BOOK / "chapters"
    out_dir.mkdir(parents=True, exist_ok=True)
    unexecuted = out_dir / f".{name}.input.ipynb"
    jupytext.write(notebook, unexecuted, fmt="ipynb")
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(unexecuted),
            str(out_dir / f"{name}.ipynb"),
            parameters=parameters,
            cwd=str(REPO),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
    except papermill.PapermillExecutionError as error:
        raise SystemExit(
            f"notebook notebooks/{name}.py failed in cell [{error.exec_count}] "
            f"(code cell {error.cell_index}): {error.ename}: {error.evalue}\n"
            f"the executed notebook with the traceback: book/chapters/{name}.ipynb"
        ) from None
    finally:
        unexecuted.unlink(missing_ok=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], help="run chapters whose name starts with this")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--no-html", action="store_true", help="execute the notebooks, skip the HTML build")
    args = parser.parse_args(argv)

    parameters = {key: parse_value(value) for key, value in args.parameter}
    names = chapters_from_toc(BOOK / "_toc.yml")
    if args.only:
        names = [n for n in names if any(n.startswith(prefix) for prefix in args.only)]
    timings = {}
    for name in names:
        print(f"executing notebooks/{name}.py ...", flush=True)
        timings[name] = execute(name, parameters)
        print(f"  done in {timings[name]:.1f} s", flush=True)
    if timings:
        print(f"all notebooks: {sum(timings.values()):.1f} s")
    if args.no_html:
        return 0
    command = [
        str(Path(sys.executable).with_name("jupyter-book")), "build", str(BOOK),
        "--config", str(REPO / "_config.yml"), "--toc", str(BOOK / "_toc.yml"),
        "--path-output", str(BOOK), "-W", "-n", "--keep-going",
    ]
    result = subprocess.run(command, cwd=REPO)
    if result.returncode != 0:
        print("jupyter-book build failed (warnings count as errors)", file=sys.stderr)
        return result.returncode
    print(f"book: {BOOK / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
