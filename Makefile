# Two entry points for people (see README): `make demo` and `make test`.
# Everything installs into ./.venv (Python) and ./node_modules (anvil, solc, the official TS client).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SANDBOX_DIR ?= .sandbox

.PHONY: install demo test test-unit lint typecheck check bench contracts clean

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[sandbox,dev]"
	# StarkWare's native crypto for the emulator's signature checks; without its Python
	# wrapper's pins, which clash with dydx-v3-python's sympy (see stark_crypto.py)
	$(BIN)/pip install --quiet --no-deps crypto-cpp-py==2.0.0
	# no install scripts: the TS client's native extras (ffi-napi, bigint-buffer) stay unbuilt
	npm ci --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error
	# the editable package's bytecode, as pip writes it for installed ones: a shell that sets
	# PYTHONDONTWRITEBYTECODE would otherwise compile ~170 modules at every command's start
	$(BIN)/python -m compileall -q provisioner benchmarks > /dev/null
	touch $(STAMP)

install: $(STAMP)

## The main job: start the sandbox, apply the example manifest, show that it converged.
demo: install
	bash scripts/demo.sh

## The test suite: unit tests and integration tests against a real sandbox it starts itself.
test: install
	bash scripts/run-tests.sh

lint: install
	$(BIN)/ruff check provisioner tests benchmarks
	$(BIN)/ruff format --check provisioner tests benchmarks

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

## Loopback figures, then the same product far from its services (latency proxies, 2 s blocks).
bench: install
	$(BIN)/python -m benchmarks.run  # see README.md, "Benchmarks"
	$(BIN)/python -m benchmarks.realistic

## Rebuild the Solidity stand-ins' artifacts (committed) with npm's solc.
contracts: install
	node provisioner/sandbox/contracts/build.js

clean:
	-$(BIN)/provision sandbox down --dir $(SANDBOX_DIR)
	rm -rf $(VENV) node_modules $(SANDBOX_DIR)
