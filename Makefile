# snnc developer entry points. Python 3.10 is required (Lava supports only 3.10).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
# python3.10 from PATH, else from pyenv's versions folder.
PY310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10; do \
           $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null && { echo $$p; break; }; done)

.PHONY: setup setup-browser lint test test-fast test-slow test-all demo examples clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -n "$(PY310)" || { echo "error: python3.10 not found (install it, e.g. pyenv install 3.10)"; exit 2; }
	$(PY310) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip<25"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

# Headless Chromium renders the HTML report in tests/report (Debian's chromium package).
# Root installs directly; other users through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
setup-browser:
	@test -x /usr/bin/chromium || { echo "installing chromium (headless browser for tests/report)"; \
	  ($(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
	   { $(SUDO) apt-get update -q >/dev/null && \
	     $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }); }

# Two tiers: `make test` runs everything not marked slow (goal: at most 10 minutes on 2 cores);
# `make test-slow` only the slow end-to-end runs (whole models and data sets); `make test-all`
# both in one run. PYTEST_ARGS passes options through (e.g. PYTEST_ARGS="-x --durations=20").
# pytest exits 5 when a tier collects no tests: an empty tier is not a failure.
PYTEST_ARGS ?=
pytest_tier = $(PY) -m pytest -q $(1) $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests in this tier"; else exit $$rc; fi; }

# The layer and acyclicity contracts of pyproject.toml ([tool.importlinter]).
lint: setup
	$(VENV)/bin/lint-imports

test: setup setup-browser lint
	$(call pytest_tier,-m "not slow")

test-fast: test

test-slow: setup setup-browser
	$(call pytest_tier,-m slow)

test-all: setup setup-browser lint
	$(call pytest_tier,)

demo: setup
	$(VENV)/bin/snnc inspect examples/lenet/lenet.onnx
	$(VENV)/bin/snnc compile examples/lenet/lenet.onnx --method fs --target cpu \
	    --calib examples/lenet/calib.npz -o out/lenet-fs.snnc
	$(VENV)/bin/snnc simulate out/lenet-fs.snnc --data examples/lenet/test.npz
	$(VENV)/bin/snnc report out/lenet-fs.snnc --data examples/lenet/test.npz --limit 100 \
	    -o out/lenet-fs.html

# The example scripts with their defaults (tests/examples runs them with smaller data).
examples: setup
	$(PY) examples/quickstart.py
	$(PY) examples/from_pytorch.py
	$(PY) examples/compare_methods.py
	$(PY) examples/export.py

clean:
	rm -rf $(VENV) build *.egg-info
