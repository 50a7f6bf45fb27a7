# Atiende: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run stop test install install-test install-reference system-deps lint unit bench reliability clean lock intent-vectors request-model

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Exactly the locked versions (requirements*.lock, from `make lock`), then the project
# itself without resolving again. Reinstall when pyproject.toml or a lock file changes.
# `atiende models install` checks each model file against its SHA-256 and stops on a
# mismatch.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/atiende models install
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements-test.lock $(VENV)/.installed $(VENV)/.installed-reference
	$(BIN)/pip install -q -r requirements-test.lock
	touch $@

## The openai-whisper reference transcriber (optional; the tests use it): the CPU build of
## torch (torch==2.13.0+cpu: no CUDA libraries, no triton), openai-whisper without its deps.
## Where pip does not find the +cpu build, add PyTorch's CPU wheel index (see README).
$(VENV)/.installed-reference: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -r requirements.lock '.[reference]'
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/pip install -q --no-deps openai-whisper==20250625
	$(BIN)/atiende models convert-whisper
	touch $@

## Re-resolve the lock files from pyproject.toml (upgrades what is not pinned there).
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --python-version 3.11.7 --no-header --annotation-style line --quiet
## make intent-vectors: after editing knowledge/data/intents.yaml, the second model's vectors
## of the shipped intent examples (knowledge/data/intents.second.npz; a test checks they match)
intent-vectors: | $(BIN)/python
	$(BIN)/python -c "import asyncio, pathlib; from knowledge.e5 import E5Embedder; \
	from knowledge.intents import write_shipped_second_vectors as w; \
	print(asyncio.run(w(E5Embedder(), pathlib.Path('knowledge/data/intents.second.npz'))), 'examples')"

## make request-model: after editing an evaluation set (knowledge/evalsets), refit the model
## that tells requests for a person (knowledge/data/requests.npz; a test checks it matches)
request-model: | $(BIN)/python
	ATIENDE_DEMO=false $(BIN)/atiende eval --fit-requests knowledge/data/requests.npz

lock: | $(BIN)/python
	$(BIN)/pip install -q uv==0.9.5
	$(UV_COMPILE) -o $(VENV)/lock.tmp
	{ echo '# Locked dependency set of atiende: `make lock` re-resolves it from'; \
	  echo '# pyproject.toml (uv pip compile); `make` installs exactly these versions.'; \
	  cat $(VENV)/lock.tmp; } > requirements.lock
	$(UV_COMPILE) --extra test -o $(VENV)/lock.tmp
	{ echo '# Locked dependency set of atiende (with the test extra): `make lock` re-resolves it from'; \
	  echo '# pyproject.toml (uv pip compile); `make` installs exactly these versions.'; \
	  cat $(VENV)/lock.tmp; } > requirements-test.lock
	rm -f $(VENV)/lock.tmp

install-reference: $(VENV)/.installed-reference

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test system-deps

## make run: everything on this machine at http://127.0.0.1:$${ATIENDE_PORT:-8000}
run: install
	$(BIN)/atiende run

stop:
	@if [ -x $(BIN)/atiende ]; then $(BIN)/atiende stop; fi

## System packages the tests need (audio synthesis/encoding, headless browser).
## Installed with apt when missing and we are root; otherwise the README says what to install.
SYSTEM_TOOLS := ffmpeg espeak-ng chromium
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing system packages:$$missing (install them: sudo apt-get install$$missing)"; exit 1; fi; \
	fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bot knowledge handoff tests
	$(BIN)/lint-imports
	$(BIN)/mypy

unit: install-test
	$(BIN)/pytest -q

## make test: lint gates, then the whole suite on real PostgreSQL and Redis it starts itself,
## in TEST_WORKERS processes (pytest-xdist; each starts its own PostgreSQL and Redis on unix
## sockets: much of the suite waits on servers and subprocesses, so 2 workers finish in about
## 11 minutes on 2 cores where 1 takes 18). TEST_WORKERS=0 runs it in this process alone.
TEST_WORKERS ?= 2
test: install-test lint
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --durations=15

## make reliability: the whole proof suite at full size (duplicates, kill -9 of the API and the
## worker, Redis loss, fuzzing, 5 WhatsApp numbers x 200 start/stop/crash cycles on the real
## neonize, several minutes of load); prints the figures (RELIABILITY.md).
reliability: install-test
	ATIENDE_RELIABILITY=full $(BIN)/pytest -q -p no:cacheprovider -rs tests/ops tests/prod/test_wheel_install.py
	ATIENDE_RELIABILITY=full $(BIN)/pytest -q -p no:cacheprovider -rs tests/security/test_fuzz.py

bench: install
	$(BIN)/atiende bench pipeline
	$(BIN)/atiende bench speech

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
