# The two commands a newcomer runs: `make run` and `make test`.
# Both create the virtual environment from requirements.lock when it is missing
# or older than the lock file, so a fresh clone needs nothing else. Every file
# installed must match a hash of the lock (tools/lock.py writes it).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

CHROMIUM ?= /usr/bin/chromium

.PHONY: run test lint typecheck audit docs pytest fuzz bench dictionary templates messages venv browser clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cdcompact needs Python 3.11 or newer (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

run: venv $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/cdcompact run

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# The browser test needs Debian's Chromium; as root (CI) it is installed when missing.
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser test"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	      (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null); \
	  else \
	    echo "no $(CHROMIUM) and not root: the browser test will be skipped"; \
	  fi; \
	fi

pytest: venv browser
	$(BIN)/python -m pytest

# The manual (docs/, mkdocs.yml) as a site in var/site/; --strict fails on a broken
# link or anchor and on a page missing from the navigation.
docs: venv
	$(BIN)/mkdocs build --strict --quiet

# Known vulnerabilities in requirements.lock (pip-audit); says so and passes
# when the advisory database cannot be reached.
audit: venv
	$(BIN)/python tools/audit.py

test: lint typecheck audit docs pytest

# Coverage-guided fuzzing (atheris) of the IATI harmoniser and the submission
# readers, two minutes each; crashes are kept under var/fuzz/.
fuzz: venv
	$(BIN)/python fuzz/run.py --seconds 120

dictionary: venv
	$(BIN)/cdcompact schema dictionary

templates: venv
	$(BIN)/cdcompact templates --out templates

# The pages' texts (gettext): extract every message of publish/ (babel.cfg) and
# bring each catalogue of publish/locale/ up to date; a new message comes in
# untranslated, and tests/unit/test_translations.py names it until it is.
# A new language: make messages, then
#   .venv/bin/pybabel init -i var/messages.pot -d publish/locale --no-wrap -l <lang>
messages: venv
	@mkdir -p var
	$(BIN)/pybabel -q extract -F babel.cfg --no-wrap --sort-by-file -o var/messages.pot .
	$(BIN)/pybabel -q update -i var/messages.pot -d publish/locale --no-wrap -N

# Benchmarks print figures (never run by the test suite): harmonising against
# bare lxml iterparse on 100 MB and 1 GB corpora built from the fixtures (under
# var/bench/, reused; medians of 3 runs); the whole nightly job on corpora of
# 1 GB and 10 GB (the size of the whole of IATI) stage by stage, with its MB/s
# and the peak RSS of every process, plus a night with no change and a night
# where only the exchange rates gained a month; the release stage alone on the
# 1 GB run's tables (the pandas release of 7ca04e4 against today's, three
# scenarios, about 20 minutes), the quality report over the 1 GB run's tables
# (medians of 3 runs), then the duplication pair search at 10k, 100k and 1M
# synthetic activities (medians of 3 runs), the metrics stage old and new at
# 20k and 200k synthetic activities (about 5 minutes), and the profile pages of 50
# countries and 100 partners in English and French (target: under a minute).
# About 4 hours, most of it the 10 GB nights.
# The extractor's figures are ratios to bare iterparse measured on one pinned core.
PIN := $(shell command -v taskset >/dev/null && echo taskset -c 0)

bench: venv
	$(PIN) $(BIN)/python benchmarks/harmonise.py --sizes 100 1000
	$(BIN)/python benchmarks/pipeline.py --sizes 1000 10000
	$(BIN)/python benchmarks/release.py
	$(BIN)/python benchmarks/quality.py --data var/bench/pipeline-1000/data
	$(BIN)/python benchmarks/duplication.py --sizes 10000 100000 1000000
	$(BIN)/python benchmarks/metrics.py --activities 20000 200000 --check
	$(BIN)/python benchmarks/profiles.py --countries 50 --partners 100

clean:
	rm -rf $(VENV) $(DAGSTER_HOME) var
