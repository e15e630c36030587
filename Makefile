# ezclip: `make help` lists the targets.
SHELL := /bin/bash
comma := ,
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# This machine's pip takes these from local disk; on a CUDA box pick the build for your driver,
# e.g. make install TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# extras of ezclip to install: dev (tests, lint); search (the Optuna sweeper); slurm (the submitit launcher)
EXTRAS ?= dev
PYTEST_ARGS ?=
LAUNCHER ?=

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-17s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed ## create .venv and install ezclip (EXTRAS=dev,search,slurm adds the Optuna sweeper and SLURM launcher)
	$(if $(filter-out dev,$(subst $(comma), ,$(EXTRAS))),$(BIN)/pip install --quiet -e '.[$(EXTRAS)]')

demo: $(VENV)/.installed ## the whole pipeline on SynthMotion with a nano-CLIP, on the CPU (~10 min first time)
	$(BIN)/ezclip demo

test: $(VENV)/.installed ## run the fast tests (skips @slow)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

test-full: $(VENV)/.installed ## run every test, slow ones included
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff check + format check + the layer contract (import-linter)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports

bench: $(VENV)/.installed ## model speed/memory ratios and loader clips/s, raw vs prepared, on this machine (~5 min)
	$(BIN)/python -m ezclip.bench

bench-gpu: $(VENV)/.installed ## on a GPU: views/s and memory by batch size, Table 7's row -> bench-gpu.json (<10 min)
	$(BIN)/python -m ezclip.bench_gpu --out bench-gpu.json

reproduce-table%: $(VENV)/.installed ## paper Table N's runs + report, N in 1-7, 10-13 (DRY_RUN=1: list the jobs; LAUNCHER=slurm)
	$(BIN)/python -m ezclip.reproduce $* $(if $(DRY_RUN),--dry-run) $(if $(LAUNCHER),hydra/launcher=$(LAUNCHER)) $(OVERRIDES)

clean: ## remove caches (keeps .venv and outputs)
	rm -rf .pytest_cache .ruff_cache build dist src/*.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -exec rm -rf {} +

.PHONY: help install demo test test-full lint bench bench-gpu clean
