# menwei: two commands set everything up on a fresh Debian machine.
#   make demo   run the gate app on the built-in demo community
#   make test   lint, type-check, import contracts and the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBS := libzbar0 tmux fonts-wqy-microhei postgresql
DEBS += espeak-ng alsa-utils  # the verdict spoken in Mandarin, and a player for the sound cues
# faketime: runs the suite at another date (docs/testing.md).
DEBS += faketime

.PHONY: demo test check setup debs bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: debs $(STAMP)

# System packages: zbar (optional decoder), tmux (keystroke tests), a CJK font for printed passes,
# PostgreSQL (the server tests start their own throwaway cluster from it).
debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "menwei: missing Debian packages:$$missing (sudo apt-get install --no-install-recommends$$missing); continuing without them"; fi; \
	fi

demo: setup
	$(BIN)/menwei demo

check: setup
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: check
	$(BIN)/pytest --cov=menwei --cov-branch --cov-report=term:skip-covered --cov-report=json:build/coverage.json
	$(BIN)/python scripts/coverage_floor.py build/coverage.json

bench: setup
	for s in scripts/bench_*.py; do $(BIN)/python $$s; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# A real Matrix homeserver for the notification tests: matrix-synapse in its own environment
# (it pins its own Twisted; never in the project's venv). `make test` installs it once.
SYNAPSE_VERSION := 1.163.0
SYNAPSE_STAMP := .venv-synapse/.installed

$(SYNAPSE_STAMP):
	$(PY) -m venv .venv-synapse
	.venv-synapse/bin/pip install -q --upgrade pip
	.venv-synapse/bin/pip install -q 'matrix-synapse==$(SYNAPSE_VERSION)'
	touch $(SYNAPSE_STAMP)

.PHONY: synapse-env
synapse-env: $(SYNAPSE_STAMP)
test: $(SYNAPSE_STAMP)
# Mutation testing of the decision rules, the pass parser, the state fold and the ingest
# (scripts/mutation.py holds the target list); prints each target's score. Not part of `make test`.
.PHONY: mutation
mutation: setup
	$(BIN)/python scripts/mutation.py
