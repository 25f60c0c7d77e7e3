# `make run`, `make test` and `make check` build the venv when it is missing or older than pyproject.toml.
PYTHON ?= python3
# One venv per interpreter: `make test PYTHON=python3.12` builds .venv-python3.12 and never reuses another's.
VENV   ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
STAMP  := $(VENV)/.installed

.PHONY: run test check bench bench-peers clean compile

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "jcsh needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test,dev]'
	@# setuptools serves the editable jcsh through an import hook that a .pth imports at every start
	@# (pathlib, urllib.parse, ipaddress: ~11 ms of each process). A plain path line to a folder that
	@# holds only a link to jcsh/ imports the same live sources without it; the dist-info (metadata,
	@# the console script) stays as pip wrote it. See docs/decisions.md, "One jcsh package".
	site=$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') && \
	rm -f "$$site"/__editable__*jcsh* "$$site"/__pycache__/__editable__*jcsh* && \
	mkdir -p $(VENV)/jcsh-path && ln -sfn $(CURDIR)/jcsh $(VENV)/jcsh-path/jcsh && \
	echo $(abspath $(VENV))/jcsh-path > "$$site"/jcsh.pth
	touch $(STAMP)

# PYTHONDONTWRITEBYTECODE may be set; compiled files keep start-up fast all the same.
compile: $(STAMP)
	@$(VENV)/bin/python -m compileall -q shell runtime stdlib jcsh/__init__.py jcsh/__main__.py >/dev/null

run: compile
	$(VENV)/bin/jcsh

test: $(STAMP)
	$(VENV)/bin/python -m pytest

# The gate: lint, formatting and types, zero findings.
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: compile
	$(VENV)/bin/python bench/run.py

bench-peers: $(STAMP)
	$(VENV)/bin/python -m pip install -q ipython ptpython sslyze
	@echo "swaks and openssl come from the system package manager: apt-get install swaks openssl"

clean:
	rm -rf .venv .venv-* build *.egg-info
