# One entry point for people and CI. Everything runs from .venv, created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run demo test lint build venv clean proto

# `make run` scans live MEXC; `make run DEMO=1` (or `make demo`) scans the built-in emulator, offline.
run: build ## set up and start the scanner against live MEXC (DEMO=1: the offline emulator)
	$(PY) -m supervisor $(if $(DEMO),--demo,--config config.yaml)

# `make demo TELEGRAM=1`: cards go to the fake Bot API on 127.0.0.1:8081 (README: "Talking to the bot");
# DEMO_ARGS passes any other demo option, e.g. DEMO_ARGS="--speed 1 --data-dir ./data/demo".
demo: build ## set up and start the scanner against the built-in emulator (offline)
	$(PY) -m supervisor --demo $(if $(TELEGRAM),--telegram) $(DEMO_ARGS)

test: build ## set up, lint, then run the whole test suite
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

build: $(STAMP)
	$(PY) setup.py --quiet build_ext --inplace

proto: $(STAMP) ## regenerate the emulator's protobuf classes from sim/proto/mexc_push.proto
	$(PY) -m grpc_tools.protoc -I sim/proto --python_out=sim/proto --pyi_out=sim/proto sim/proto/mexc_push.proto

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf build core/*.c core/*.so core/*.html shards/*.c shards/*.so
