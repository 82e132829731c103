# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv and install the project into it first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit prism browser up bench bench-growth clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "tierroute needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tierroute demo

up: $(STAMP)
	$(BIN)/tierroute up

prism:
	bash scripts/install-prism.sh

# Debian's Chromium for the dashboard's browser test; a no-op when it is there.
browser:
	bash scripts/install-chromium.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Unit tests, then integration (real Postgres + Redis), e2e (real API and
# Celery worker processes, Flower), the Prism contract test and the dashboard in Chromium.
test: $(STAMP) prism browser lint typecheck
	$(BIN)/pytest -ra

unit: $(STAMP)
	$(BIN)/pytest -ra tests/unit

# Throughput, latency and memory benchmarks (bench/): real Postgres and Redis on
# 127.0.0.1, writes bench/results/NAME.json and prints a table. A few minutes.
bench: $(STAMP)
	bash bench/install-tools.sh
	$(BIN)/python -m bench

# The read paths as the tables grow (bench/growth.py): filled in SQL to each size,
# then timed; writes bench/results/growth.json. About 10 minutes and 10 GB of disk;
# GROWTH_SIZES=1e5,1e6 stops at 1M.
GROWTH_SIZES ?= 1e5,1e6,5e6
bench-growth: $(STAMP)
	$(BIN)/python -m bench --only growth --growth-sizes $(GROWTH_SIZES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
