# The two commands a new user needs (README): `make bench` and `make test`.
# Each creates the virtual environment on first use (CPU PyTorch from the local wheel).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: bench test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	# torch first, pinned: a bare `torch` requirement could pull a multi-GB CUDA build
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

bench: $(STAMP)  ## the main job: CNN vs t-SNE/HDBSCAN+RF on the simulated survey
	$(BIN)/hizkit bench --classifiers cnn,rf

test: $(STAMP)  ## lint, format check, then the test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info
