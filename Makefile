# omnivue — every target sets itself up: a fresh machine needs only python3.11 and make.
#   make demo   the whole flow end to end on the embedded defaults
#   make test   the test suite (what CI runs)
#   make bench  benchmarks (never part of the tests)

UV_VERSION := 0.13.8
TOOLS      := .tools
UV         := $(TOOLS)/bin/uv
PYTHON     ?= python3.11
export OMNIVUE_HOME ?= $(CURDIR)/.omnivue
export SODA_CORE_TELEMETRY_ENABLED := false
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False

.PHONY: setup chromium demo test bench docs clean help

help:
	@echo "make demo   - start the local broker, simulate, run the pipeline, print a summary"
	@echo "make test   - run the test suite"
	@echo "make bench  - run the benchmarks (results in docs/benchmarks.md)"
	@echo "make docs   - build the dbt docs (dbt_project/target/index.html)"
	@echo "make clean  - stop the local broker and remove $(OMNIVUE_HOME)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode
	@touch $@

setup: .venv/.synced

demo: setup
	.venv/bin/omnivue demo

# the audit report is tested in a real browser: Debian's chromium (installed when missing; needs root)
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null)

test: setup chromium
	.venv/bin/python -m pytest

bench: setup
	.venv/bin/python bench/run_all.py

docs: setup
	cd dbt_project && OMNIVUE_WAREHOUSE=$(OMNIVUE_HOME)/warehouse.duckdb ../.venv/bin/dbt docs generate --profiles-dir .

clean:
	-.venv/bin/omnivue broker stop
	rm -rf $(OMNIVUE_HOME)
