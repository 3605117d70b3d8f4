# The two commands: `make run` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

export PREFECT_HOME ?= $(CURDIR)/var/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export EXAMFLOW_HOME ?= $(CURDIR)/var

.PHONY: run test lint unit wheel bench screenshot install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed

run: install
	mkdir -p "$(PREFECT_HOME)"
	$(BIN)/examflow up --demo

test: lint unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: install
	mkdir -p "$(PREFECT_HOME)"
	$(BIN)/pytest -q

# The operator's install, as CI tries it: wheel, fresh venv, calendar check / up / demo.
wheel:
	scripts/wheel_smoke.sh

bench: install
	$(BIN)/python benchmarks/registration.py
	$(BIN)/python benchmarks/fanout.py

screenshot: install
	$(BIN)/python scripts/screenshot_ui.py --out docs/prefect-ui-stalled.png

clean:
	rm -rf $(VENV) var
