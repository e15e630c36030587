# ezclip: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# This machine's pip takes these from local disk; on a CUDA box pick the build for your driver,
# e.g. make install TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## create .venv and install ezclip with its dev extras

demo: $(VENV)/.installed ## the whole pipeline on SynthMotion with a nano-CLIP, on the CPU (~10 min first time)
	$(BIN)/ezclip demo

test: $(VENV)/.installed ## run the fast tests (skips @slow)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

test-full: $(VENV)/.installed ## run every test, slow ones included
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff check + format check
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

bench: $(VENV)/.installed ## model speed/memory ratios on this machine (prints a table)
	$(BIN)/python -m ezclip.bench

reproduce-table1: $(VENV)/.installed ## Table 1 (zero-shot K400 -> HMDB51/UCF101/K600): 4 models + report (DRY_RUN=1 lists the jobs)
	$(BIN)/python -m ezclip.reproduce 1 $(if $(DRY_RUN),--dry-run) $(OVERRIDES)

reproduce-table2: $(VENV)/.installed ## Table 2 (base-to-novel, B/16): 4 datasets x 3 seeds + report (DRY_RUN=1 lists the jobs)
	$(BIN)/python -m ezclip.reproduce 2 $(if $(DRY_RUN),--dry-run) $(OVERRIDES)

reproduce-table4: $(VENV)/.installed ## Table 4 (few-shot, B/16): 3 datasets x K=2,4,8,16 + report (DRY_RUN=1 lists the jobs)
	$(BIN)/python -m ezclip.reproduce 4 $(if $(DRY_RUN),--dry-run) $(OVERRIDES)

reproduce-table5: $(VENV)/.installed ## Table 5 (TVP x motion-loss ablation, all base samples, B/16): 4 datasets x 4 + report
	$(BIN)/python -m ezclip.reproduce 5 $(if $(DRY_RUN),--dry-run) $(OVERRIDES)

clean: ## remove caches (keeps .venv and outputs)
	rm -rf .pytest_cache .ruff_cache build dist src/*.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -exec rm -rf {} +

.PHONY: help install demo test test-full lint bench reproduce-table1 reproduce-table2 reproduce-table4 reproduce-table5 clean
