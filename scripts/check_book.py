"""Open every page of the built book in headless Chromium and fail on what a reader would see broken.

    python scripts/check_book.py book/_build/html [--chromium /usr/bin/chromium]

Per page: a script error or a failed load of one of the book's own files in the browser's log; an
image (figure) that did not load; a Python traceback or a warning printed into the page; a chapter
without an H1 or without the download link of its executed notebook. Resources on other hosts (the
MathJax CDN) are not counted: the build machine has no network, a reader's browser has. Needs
Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path

SKIP = {"genindex.html", "search.html", "py-modindex.html"}

PAGE_FACTS = """
const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);
const stderr = [...document.querySelectorAll('.stderr, .output.stderr, div.output_stderr')]
  .map(e => e.innerText).filter(t => /warn|error/i.test(t));
const text = document.body ? document.body.innerText : '';
return {
  broken: broken,
  stderr: stderr,
  traceback: /Traceback \\(most recent call last\\)/.test(text),
  h1: document.querySelectorAll('h1').length,
  ipynb: [...document.querySelectorAll('a')].filter(a => (a.getAttribute('href') || '').endsWith('.ipynb')).length,
  images: document.images.length,
};
"""


def is_redirect(page: Path) -> bool:
    """jupyter-book's index.html only forwards to the first page, which is checked itself."""
    head = page.read_text(errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head and "<body" not in head


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def browser(chromium: str, driver: str):  # -> selenium WebDriver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def check_page(driver, url: str, base: str, is_chapter: bool) -> tuple[list[str], dict]:
    driver.get(url)
    facts = driver.execute_script(PAGE_FACTS)
    problems = [f"figure did not load: {src}" for src in facts["broken"] if src.startswith(base)]
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        if entry.get("level") == "SEVERE" and (base in message or "Uncaught" in message) and "favicon" not in message:
            problems.append(f"browser log: {message[:300]}")
    if facts["traceback"]:
        problems.append("a Python traceback is printed in the page")
    problems += [f"warning printed in the page: {t[:200]!r}" for t in facts["stderr"]]
    if facts["h1"] < 1:
        problems.append("no H1")
    if is_chapter and facts["ipynb"] < 1:
        problems.append("no download link of the executed notebook")
    return problems, facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=Path)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--driver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    args = parser.parse_args(argv)
    pages = sorted(p for p in args.html.rglob("*.html") if p.name not in SKIP and "_static" not in p.parts
                   and "_sources" not in p.parts and not is_redirect(p))
    if not pages:
        print(f"{args.html}: no HTML pages (build the book first)", file=sys.stderr)
        return 1
    server, base = serve(args.html)
    driver = browser(args.chromium, args.driver)
    failures = 0
    try:
        for page in pages:
            rel = page.relative_to(args.html).as_posix()
            problems, facts = check_page(driver, f"{base}/{rel}", base, rel.startswith("chapters/"))
            status = "ok" if not problems else "FAIL"
            print(f"{status:4} {rel} ({facts['images']} images)")
            for problem in problems:
                print(f"     - {problem}")
            failures += bool(problems)
    finally:
        driver.quit()
        server.shutdown()
    print(f"{len(pages) - failures} pages ok, {failures} with problems (headless Chromium)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
