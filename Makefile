# The two commands a newcomer needs: `make run` (a running demo) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DEMO_HOUSEHOLDS ?= 3000
DEMO_SEED ?= 2026
HOST ?= 127.0.0.1:8000

.PHONY: install run demo test lint format bench bench-all clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements/lock.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/lock.txt
	touch $@

demo: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo --households $(DEMO_HOUSEHOLDS) --seed $(DEMO_SEED)

run: demo
	@echo "Serving on http://$(HOST)/  (Ctrl-C to stop)"
	$(PY) manage.py runserver $(HOST)

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/search.py --households $(or $(HOUSEHOLDS),100000)

# Every figure of the design at one size, on a database built for it (bench/million.py; BENCH_ARGS e.g. --measure-only).
bench-all: install
	$(PY) bench/million.py --households $(or $(HOUSEHOLDS),100000) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
