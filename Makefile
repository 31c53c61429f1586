# Two commands matter: `make run` (the service on embedded defaults) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint types unit bench clean system-deps check-install lock

# The test environment is pinned by requirements/test.lock (runtime + test extras), the image
# and the production-install check by requirements/runtime.lock; `make lock` refreshes both.
$(STAMP): pyproject.toml requirements/test.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' -c requirements/test.lock
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

# A plain production install (fresh venv, `pip install .` with the runtime lock, no extras)
# starts the API and a worker and cuts one clip; CI runs it too.
check-install: system-deps
	python3 scripts/check_production_install.py

# Re-resolve the locks from pyproject.toml's ranges (newest versions that fit), with uv.
LOCK_FLAGS := --universal --python-version 3.11 --no-header --annotation-style line
lock: $(STAMP)
	$(PY) -m pip install -q 'uv>=0.5,<1'
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_FLAGS) --upgrade -o requirements/runtime.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra test $(LOCK_FLAGS) --upgrade -o requirements/test.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
