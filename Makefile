# freightpay: `make run` starts the whole local stack, `make test` runs lint, types and tests.
# Both install what they need into .venv/ first (nothing else is needed but Python 3.11).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint types unit fast bench chaos clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/freightpay run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: lint types unit

# The fast layer, no dev server and no vendor sandbox: the payment workflow on the time-skipping
# test server with fake activities, the replay of the recorded histories, and the pure unit tests.
FAST_TESTS := tests/test_workflow_fast.py tests/test_vendor_outage_fast.py tests/test_rules.py tests/test_matching.py tests/test_deposit_parsers.py tests/test_replay.py tests/test_identity.py tests/test_money.py \
	tests/test_intake_alvys.py tests/test_alvys_client_requests.py tests/test_alvys_client_parsing.py
fast: install
	$(BIN)/pytest -m "not slow" $(FAST_TESTS)

# The chaos run: N payments through a faulty sandbox, the worker killed K times, Temporal restarted.
PAYMENTS ?= 300
KILLS    ?= 10
chaos: install
	$(BIN)/python scripts/chaos.py --payments $(PAYMENTS) --kills $(KILLS)

# The benchmark, side by side with bare Temporal (sizes: make bench BENCH_ARGS="--payments 200").
BENCH_ARGS ?=
bench: install
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
