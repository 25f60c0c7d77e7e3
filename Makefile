# `make run` and `make test` build .venv when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: run test bench bench-peers clean compile

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "jcsh needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	touch $(STAMP)

# PYTHONDONTWRITEBYTECODE may be set; compiled files keep start-up fast all the same.
compile: $(STAMP)
	@$(VENV)/bin/python -m compileall -q shell runtime stdlib >/dev/null

run: compile
	$(VENV)/bin/jcsh

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: compile
	$(VENV)/bin/python bench/run.py

bench-peers: $(STAMP)
	$(VENV)/bin/python -m pip install -q ipython ptpython sslyze
	@echo "swaks and openssl come from the system package manager: apt-get install swaks openssl"

clean:
	rm -rf $(VENV) build *.egg-info
