# Two commands matter: `make run` (the service on embedded defaults) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint types unit bench clean system-deps

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

# Options for `clipper up`, e.g. make run UP_ARGS="--port 8080 --workers 2".
UP_ARGS ?=

run: system-deps $(STAMP)
	$(VENV)/bin/clipper up $(UP_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

types: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP) lint types
	$(VENV)/bin/pytest

# The benchmark runs smartcut (extra `bench`) beside Clipper.
bench: $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
