# AniTalker kit. Two commands matter: `make quickstart` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# the venv is (re)synced when any of these change
STAMP := $(VENV)/.installed
APT_PKGS := alsa-utils espeak-ng sox chromium
NODEPS := $(shell sed -n 's/^nodeps_requirements *= *//p' settings.ini)
export NO_ALBUMENTATIONS_UPDATE := 1
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg

.PHONY: help setup apt quickstart test check-clean nbtest pytest docs export clean

help:
	@echo "make quickstart  set up .venv (if needed) and run the main job on the built-in data"
	@echo "make test        set up, check notebooks are clean/exported, run nbdev_test and pytest"
	@echo "make docs        HTML pages from the notebooks into _docs/ (offline: local MathJax)"

# Debian packages: real speech wavs (alsa-utils), TTS (espeak-ng, sox), a browser for the widget tests (chromium,
# driven by Playwright by its path: `playwright install` is never run). Skipped when already present.
apt:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "[setup] apt-get install$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | { grep -v -E "is ignored: it is neither|^ *$$" || true; }

$(STAMP): $(BIN)/python setup.py settings.ini
	@echo "[setup] installing the kit and its dependencies into $(VENV) (first time: a few minutes)"
	@# setuptools prints an "Editable installation" notice for every editable install (pip >= 25); it is about
	@# editable installs in general, not this kit, so it is left out of the output (sed), like pip's index notices
	$(BIN)/python -m pip install -q -e ".[dev,faces]" 2>&1 | { grep -v -E "is ignored: it is neither|^ *$$" || true; } \
	  | sed '/BuildBackendWarning: Editable installation/,/with strategy, WheelFile/d'
	$(BIN)/python -m pip install -q --no-deps $(NODEPS) 2>&1 | { grep -v -E "is ignored: it is neither|^ *$$" || true; }
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

setup: apt $(STAMP)

quickstart: setup
	$(BIN)/anitalker quickstart --out runs/quickstart

# fails if nbdev_clean or nbdev_export would change a file, or README.md is not what nbs/index.ipynb generates
check-clean: setup
	@before=$$(git status --porcelain -- nbs anitalker; git diff -- nbs anitalker | md5sum); \
	$(BIN)/nbdev_clean && $(BIN)/nbdev_export; \
	after=$$(git status --porcelain -- nbs anitalker; git diff -- nbs anitalker | md5sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "ERROR: nbdev_clean / nbdev_export changed files: run them and commit."; git status --short -- nbs anitalker; exit 1; fi; \
	if ! $(BIN)/jupyter nbconvert --to markdown --stdout --log-level ERROR nbs/index.ipynb | cmp -s - README.md; then \
	  echo "ERROR: README.md is out of date with nbs/index.ipynb: run 'make export' and commit."; exit 1; fi; \
	echo "[check] notebooks clean, library in sync, README current"

nbtest: setup
	$(BIN)/nbdev_test --n_workers 1 --timing   # one at a time: parallel notebooks oversubscribe 2 cores (torch uses both)

pytest: setup
	$(BIN)/python -m pytest tests -ra

test: check-clean nbtest pytest

# pages without nbdev directives or hidden cells; maths by the MathJax of jupyter-server-mathjax, copied in: no CDN
docs: setup
	$(BIN)/python scripts/build_docs.py nbs _docs
	@echo "[docs] open _docs/index.html (works offline)"

export: setup
	$(BIN)/nbdev_clean && $(BIN)/nbdev_export
	$(BIN)/jupyter nbconvert --to markdown --stdout --log-level ERROR nbs/index.ipynb > README.md

clean:
	rm -rf _docs runs/quickstart
