# Two commands matter: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(INSTALLED)

demo: $(INSTALLED)
	$(PY) -m examples.quickstart

lint: $(INSTALLED)
	$(VENV)/bin/ruff check src tests examples bench
	$(VENV)/bin/ruff format --check src tests examples bench
	$(VENV)/bin/lint-imports

typecheck: $(INSTALLED)
	$(VENV)/bin/mypy

unit: $(INSTALLED)
	$(PY) -m pytest

test: lint typecheck unit

bench: $(INSTALLED)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache legato.db legato.db-*
