# The two commands a new user types: `make book` and `make test`. Both create .venv/ if needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: book test install demo benchmarks clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[all]"
	@touch $(STAMP)

install: $(STAMP)

## Execute every notebook at demo scale with papermill and build the HTML book (book/_build/html).
BOOK_ARGS ?=
book: $(STAMP)
	$(PY) scripts/build_book.py $(BOOK_ARGS)

## Run the test suite.
test: $(STAMP)
	$(PY) -m pytest

## Generate the embedded demo world under data/demo.
demo: $(STAMP)
	$(PY) -m hsi_core.demo data/demo

## Speed claims as ratios against a baseline measured in the same run.
benchmarks: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf book/_build book/_build_samples book/chapters .cache/book
