# Developer and CI entry points. `make test` sets up everything on a fresh machine.
PYTHON ?= python3
PY = .venv/bin/python
PYTEST_ARGS ?=
STAMP = .venv/.installed

.PHONY: venv test demo chaos bench

venv: $(STAMP)

# Re-installs only when a requirements file is newer than the stamp.
$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "make venv: needs Python >= 3.11 as '$(PYTHON)' (found: $$($(PYTHON) --version 2>&1 || echo none))." >&2; \
	  echo "Install python3.11 (e.g. apt-get install python3 python3-venv) or run 'make PYTHON=/path/to/python3.11 ...'." >&2; \
	  exit 1; }
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then \
	  echo "make venv: .venv uses $$($(PY) --version); remove .venv and re-run." >&2; exit 1; fi
	@[ -x $(PY) ] || $(PYTHON) -m venv .venv || { rm -rf .venv; \
	  echo "make venv: '$(PYTHON) -m venv' failed; install the venv module (apt-get install python3-venv)." >&2; exit 1; }
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $(STAMP)

test: venv
	$(PY) -m ruff check .
	bash scripts/ensure_system_deps.sh
	$(PY) scripts/testenv.py -- $(PY) -m pytest $(PYTEST_ARGS)

demo: venv
	$(PY) scripts/demo.py

# The stack under load while workers, the web server, Redis and database connections are killed and the
# biller fails: every accepted order issued exactly once or held with its reason (scripts/chaos.py).
# CHAOS_SECONDS (default 180), CHAOS_RATE (orders/s, default 5), CHAOS_WORKERS (default 2).
chaos: venv
	bash scripts/ensure_system_deps.sh
	$(PY) scripts/chaos.py

# Performance benchmarks (BENCHMARKS.md): each starts its own throwaway PostgreSQL, Redis and processes on
# loopback. About 45 minutes on a quiet 2-core machine, most of it memory.py (100 k orders) and growth.py
# (1 M orders for the lists, issuing with 1, 2 and 4 worker processes).
bench: venv
	bash scripts/ensure_system_deps.sh
	$(PY) bench/dte_throughput.py 5
	$(PY) bench/ingest.py
	$(PY) bench/cpu_per_document.py
	$(PY) bench/issuance.py
	$(PY) bench/growth.py
	$(PY) bench/memory.py
