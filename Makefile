# herstelbus: everything a fresh machine needs is installed from here (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: help demo test test-unit bench reliability system-deps venv jars kafka-up kafka-down clean

help:
	@echo "make demo   - start Kafka, run the end-to-end path, print what happened"
	@echo "make test   - install everything, run the whole test suite on a real broker"
	@echo "make bench  - benchmarks (never part of make test)"
	@echo "make reliability - the reliability suite at full size (short versions run in make test)"

demo: system-deps venv jars
	$(BIN)/herstelbus demo

test: system-deps venv jars
	$(BIN)/pytest

test-unit: venv
	$(BIN)/pytest tests/unit

# Full-size fault scenarios (issue 10): figures to tests/reliability/RESULTS.md. Each may take long.
reliability: system-deps venv jars
	HERSTELBUS_RELIABILITY=full $(BIN)/pytest tests/reliability -o timeout=2400

# Every measuring script, then report.py (one dated JSON, a PNG chart, the Markdown table).
bench: system-deps venv jars
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@set -e; for script in bench/[!_]*.py; do [ "$$script" = bench/report.py ] && continue; \
	  echo "== $$script"; $(BIN)/python $$script; done; echo "== bench/report.py"; $(BIN)/python bench/report.py

# Java runs the broker, Maven fetches its pinned jars once; chromium runs the dashboard's browser
# test. Installed with apt-get when missing and we may (root, Debian); otherwise the message names
# what to install.
system-deps:
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Java and Maven with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null; \
	  else \
	    echo "herstelbus needs Java 17+ and Maven: apt-get install openjdk-17-jre-headless maven" >&2; exit 1; \
	  fi; }
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and chromedriver with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "herstelbus: the dashboard's browser test needs chromium and chromedriver (apt-get install chromium chromium-driver); it skips without them, and fails in CI" >&2; \
	  fi; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "herstelbus needs Python 3.11 or newer as $(PYTHON) (make PYTHON=python3.12 ...)" >&2; exit 1; }

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

jars: venv
	$(BIN)/herstelbus kafka fetch

kafka-up: venv
	$(BIN)/herstelbus kafka up

kafka-down: venv
	$(BIN)/herstelbus kafka down

clean:
	-$(BIN)/herstelbus kafka down
	rm -rf .herstelbus .pytest_cache .hypothesis
