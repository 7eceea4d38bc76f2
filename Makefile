# Two entry points for a fresh machine (Debian/Ubuntu, run as root or with sudo):
#   make demo   set everything up, then run ocrflow on the bundled samples
#   make test   set everything up, then run the whole test suite
# Both are idempotent: set-up steps re-run only when pyproject.toml changes.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ocrflow-setup
# CPU wheel by default; for CUDA install the matching torch build into $(VENV) first.
TORCH_SPEC ?= torch==2.13.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := poppler-utils tesseract-ocr-eng

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120

.PHONY: setup system-packages postgres demo test lint bench clean

setup: system-packages $(STAMP)

system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages: $$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/ocrflow export-onnx
	touch $@

postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	  for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }

demo: setup
	$(BIN)/ocrflow demo

# One pytest process for the whole suite. Tests with their own real Prefect servers leave nothing
# bound to them in it: tests/deployments talks to its servers from this process only inside
# prefect_bound_to (tests/deployments/stack.py), which drains Prefect's process-wide services
# before the server stops; tests/faults runs its flows in child processes. A hung test fails
# after pytest-timeout's per-test limit (pyproject.toml) and dumps every thread's stack.
test: setup postgres
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/bench_detector.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
