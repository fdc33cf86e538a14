"""Execute the book's notebooks with papermill and build the HTML with jupyter-book.

The table of contents (book/_toc.yml) is the list of chapters: an entry ``chapters/NN_topic`` is
executed from ``notebooks/NN_topic.py`` (jupytext py:percent) into ``book/chapters/NN_topic.ipynb``.
Notebooks run with the repository root as working directory, at the demo scale of their
``parameters`` cell unless parameters are given:

    python scripts/build_book.py                       # every chapter, then the HTML
    python scripts/build_book.py --only 05 -p device cuda -p n_images 1000   # streams its output, no HTML
    python scripts/build_book.py --only 04 --html      # ... and then the HTML book
    python scripts/build_book.py --no-html             # execute only
    python scripts/build_book.py --no-cache            # execute everything again

A failing cell stops the build with the notebook's name, the cell's number and the error.

Executed chapters are cached in ``.cache/book/`` under a content hash of the chapter's source, its
parameters, every ``hsi_core`` source file and the library versions: a chapter whose inputs did not
change is copied from the cache instead of being executed. A chapter that asked for the real sample
data (``hsi_core.paths.shared_data_root``) is reused only where those samples are in the same state
(present at the same place, or hidden). A clean clone, as in CI, has no cache and executes everything.

Chapters run ``--jobs`` at a time (default 2), each with one math thread (``--only``: the machine's
cores shared among the jobs, and the chapter's output streamed live; ``--threads`` overrides). A notebook that reads the
runs of another declares it with a line ``# book-requires: NN_topic``; it starts after that one ends.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures as futures
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
CACHE = REPO / ".cache" / "book"
sys.path.insert(0, str(REPO))
from hsi_core.paths import shared_data_root  # noqa: E402


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


def requirements(source: Path) -> list[str]:
    """The chapters this notebook reads the results of (``# book-requires: NN_topic`` lines)."""
    names = []
    for line in source.read_text().splitlines():
        if line.startswith("# book-requires:"):
            names += line.split(":", 1)[1].split()
    return names


def library_hash() -> str:
    """One hash of every file of the library and of the versions of what it runs on."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "hsi_core").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    for package in ("torch", "torchvision", "numpy", "scipy", "open_clip_torch", "matplotlib", "pandas"):
        try:
            digest.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()


def chapter_key(name: str, parameters: dict[str, object], lib: str) -> str:
    source = (REPO / "notebooks" / f"{name}.py").read_bytes()
    blob = json.dumps(parameters, sort_keys=True, default=str).encode()
    return hashlib.sha256(source + b"\0" + blob + b"\0" + lib.encode()).hexdigest()[:24]


def shared_state() -> str:
    root = shared_data_root()
    return "absent" if root is None else str(root.resolve())


def cached(name: str, key: str) -> Path | None:
    """The cached executed notebook for this key, if still valid for the data the chapter asked for."""
    meta_path = CACHE / f"{name}.json"
    notebook = CACHE / f"{name}.ipynb"
    if not (meta_path.is_file() and notebook.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("key") != key:
        return None
    if meta.get("asked_shared") and meta.get("shared_state") != shared_state():
        return None
    return notebook


def store(name: str, key: str, executed: Path, asked_shared: bool) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f".{name}.ipynb.tmp"
    shutil.copyfile(executed, tmp)
    os.replace(tmp, CACHE / f"{name}.ipynb")
    meta = {"key": key, "asked_shared": asked_shared, "shared_state": shared_state()}
    (CACHE / f".{name}.json.tmp").write_text(json.dumps(meta))
    os.replace(CACHE / f".{name}.json.tmp", CACHE / f"{name}.json")


def add_downloads(executed: Path, name: str) -> None:
    """A download line under the chapter's title: the executed notebook and its jupytext source."""
    notebook = nbformat.read(executed, as_version=4)
    marker = "hsi-book-downloads"
    notebook.cells = [c for c in notebook.cells if marker not in c.metadata.get("tags", [])]
    cell = nbformat.v4.new_markdown_cell(
        f"{{download}}`Executed notebook (.ipynb) <{name}.ipynb>` · "
        f"{{download}}`Source (jupytext .py) <../../notebooks/{name}.py>` · "
        f"re-run with your parameters: `python scripts/build_book.py --only {name[:2]} -p NAME VALUE`"
    )
    cell.metadata["tags"] = [marker]
    notebook.cells.insert(1, cell)
    nbformat.write(notebook, executed)


def execute_here(name: str, parameters: dict[str, object], out_dir: Path) -> None:
    """Run one chapter in this process (papermill starts its kernel with this environment)."""
    notebook = jupytext.read(REPO / "notebooks" / f"{name}.py")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    unexecuted = out_dir / f".{name}.input.ipynb"
    jupytext.write(notebook, unexecuted, fmt="ipynb")
    try:
        papermill.execute_notebook(
            str(unexecuted), str(out_dir / f"{name}.ipynb"), parameters=parameters, cwd=str(REPO),
            kernel_name="python3", progress_bar=False, log_output=os.environ.get("HSI_BOOK_STREAM") == "1",
            stdout_file=sys.stdout if os.environ.get("HSI_BOOK_STREAM") == "1" else None,
            stderr_file=sys.stderr if os.environ.get("HSI_BOOK_STREAM") == "1" else None,
        )
    except papermill.PapermillExecutionError as error:
        raise SystemExit(
            f"notebook notebooks/{name}.py failed in cell [{error.exec_count}] "
            f"(code cell {error.cell_index}): {error.ename}: {error.evalue}\n"
            f"the executed notebook with the traceback: {out_dir}/{name}.ipynb"
        ) from None
    finally:
        unexecuted.unlink(missing_ok=True)


def execute(name: str, parameters: dict[str, object], out_dir: Path, *, stream: bool = False,
            threads: int = 1) -> tuple[float, bool]:
    """Run one chapter in a child process with its own environment (``threads`` math threads, a log
    of whether it asked for the real samples); returns (seconds, asked). ``stream``: the chapter's
    output (cell outputs and progress bars) is printed live, prefixed with its name, instead of
    captured; a failure then shows the whole log above the error."""
    fd, log = tempfile.mkstemp(prefix=f"hsi-{name}-", suffix=".log")
    os.close(fd)
    env = {**os.environ, "HSI_DATA_ACCESS_LOG": log,
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads)),
           "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", str(threads))}
    if stream:
        env["HSI_BOOK_STREAM"] = "1"
    else:
        env["TQDM_DISABLE"] = "1"
    start = time.perf_counter()
    command = [sys.executable, __file__, "--execute-one", name, json.dumps(parameters), str(out_dir)]
    try:
        if stream:
            tail: list[str] = []
            with subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, bufsize=1) as child:
                for line in child.stdout:
                    print(f"[{name[:2]}] {line}", end="", flush=True)
                    tail = (tail + [line])[-200:]
            if child.returncode != 0:
                raise SystemExit("".join(tail).strip()[-3000:] or f"notebooks/{name}.py failed (exit {child.returncode})")
        else:
            result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(result.stderr.strip()[-3000:] or f"notebooks/{name}.py failed (exit {result.returncode})")
        asked = Path(log).read_text().strip() != ""
    finally:
        Path(log).unlink(missing_ok=True)
    return time.perf_counter() - start, asked


def run_chapters(names: list[str], parameters: dict[str, object], *, jobs: int, use_cache: bool,
                 stream: bool = False, threads: int = 1) -> dict[str, str]:
    """Execute (or take from the cache) every chapter, ``jobs`` at a time, honouring book-requires."""
    out_dir = BOOK / "chapters"
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = library_hash()
    needs = {n: [r for r in requirements(REPO / "notebooks" / f"{n}.py") if r in names] for n in names}
    for name in names:
        if not (REPO / "notebooks" / f"{name}.py").is_file():
            raise SystemExit(f"book/_toc.yml names chapters/{name}, but notebooks/{name}.py does not exist")
    done: dict[str, str] = {}
    pending = list(names)
    running: dict[futures.Future, str] = {}

    keys: dict[str, str] = {}

    def job(name: str) -> str:
        # a chapter that reads another's results is re-executed when that one's inputs changed
        upstream = "".join(keys.get(r) or chapter_key(r, parameters, lib) for r in requirements(REPO / "notebooks" / f"{name}.py")
                           if (REPO / "notebooks" / f"{r}.py").is_file())
        key = keys[name] = chapter_key(name, parameters, lib + upstream)
        hit = cached(name, key) if use_cache else None
        if hit is not None:
            shutil.copyfile(hit, out_dir / f"{name}.ipynb")
            add_downloads(out_dir / f"{name}.ipynb", name)
            return "cached"
        seconds, asked = execute(name, parameters, out_dir, stream=stream, threads=threads)
        store(name, key, out_dir / f"{name}.ipynb", asked)
        add_downloads(out_dir / f"{name}.ipynb", name)
        return f"{seconds:.1f} s" + (" (asked for the real samples)" if asked else "")

    with futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending or running:
            for name in [n for n in pending if all(r in done for r in needs[n])][: max(0, jobs - len(running))]:
                pending.remove(name)
                print(f"executing notebooks/{name}.py ...", flush=True)
                running[pool.submit(job, name)] = name
            if not running:
                raise SystemExit(f"book-requires cannot be met for {pending}")
            finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                done[name] = future.result()  # re-raises a failed chapter's SystemExit
                print(f"  {name}: {done[name]}", flush=True)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], help="run chapters whose name starts with this")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--no-html", action="store_true", help="execute the notebooks, skip the HTML build")
    parser.add_argument("--html", action="store_true", help="with --only: build the HTML book too (skipped by default)")
    parser.add_argument("--threads", type=int, default=None,
                        help="math threads per chapter (default: 1 for the whole book; with --only, the "
                             "machine's cores shared among --jobs)")
    parser.add_argument("--quiet", action="store_true", help="with --only: capture the output instead of streaming it")
    parser.add_argument("--no-cache", action="store_true", help="execute every chapter, ignoring the cache")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="chapters run at once")
    parser.add_argument("--output", default=str(BOOK), help="where the HTML goes (<output>/_build/html)")
    parser.add_argument("--execute-one", nargs=3, metavar=("NAME", "PARAMETERS_JSON", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute_one:
        name, blob, out = args.execute_one
        try:
            execute_here(name, json.loads(blob), Path(out))
        except SystemExit as error:
            print(error, file=sys.stderr)
            return 1
        return 0

    parameters = {key: parse_value(value) for key, value in args.parameter}
    names = chapters_from_toc(BOOK / "_toc.yml")
    if args.only:
        names = [n for n in names if any(n.startswith(prefix) for prefix in args.only)]
    from hsi_core.demo import ensure_demo

    ensure_demo()  # once, before chapters run in parallel
    print(f"data: real samples {shared_state()}; demo world {REPO / 'data' / 'demo'}", flush=True)
    start = time.perf_counter()
    only = bool(args.only)
    threads = args.threads if args.threads is not None else (
        max(1, (os.cpu_count() or 1) // max(1, min(args.jobs, len(names)))) if only else 1)
    for name in names:
        missing = [r for r in requirements(REPO / "notebooks" / f"{name}.py") if r not in names]
        if missing:
            print(f"note: {name} reads the results of {', '.join(missing)}; run that first if it has not run "
                  "with these settings", flush=True)
    run_chapters(names, parameters, jobs=args.jobs, use_cache=not args.no_cache, stream=only and not args.quiet,
                 threads=threads)
    print(f"all notebooks: {time.perf_counter() - start:.1f} s ({threads} math threads per chapter)", flush=True)
    if args.no_html or (only and not args.html):
        if only and not args.html:
            print("HTML not built (--only; add --html to build it)", flush=True)
        return 0
    command = [
        str(Path(sys.executable).with_name("jupyter-book")), "build", str(BOOK),
        "--config", str(REPO / "_config.yml"), "--toc", str(BOOK / "_toc.yml"),
        "--path-output", args.output, "-W", "-n", "--keep-going",
    ]
    result = subprocess.run(command, cwd=REPO)
    if result.returncode != 0:
        print("jupyter-book build failed (warnings count as errors)", file=sys.stderr)
        return result.returncode
    print(f"book: {Path(args.output) / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
