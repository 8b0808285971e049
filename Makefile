# Two entry points on a fresh machine:
#   make bench   runs the main job (the default benchmark suite)
#   make test    runs the linter, the formatter check, the type checker and the tests
# Both create .venv on first use and install torch before anything that depends on it.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
BENCH_OUT ?= bench-out

.PHONY: bench test lint docs venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# The stamp depends on pyproject.toml, so a change of dependencies re-installs.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[dev]"
	# open_clip's SigLIP loss is a test peer; its package needs torchvision (a second torch),
	# its loss file only torch, so it is installed without dependencies.
	$(BIN)/pip install --no-deps "open_clip_torch>=2.24"
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[bench,lightgbm]"
	touch $@

venv: $(VENV)/.installed-dev

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy src/rankloss tests/test_typing.py

# The documentation site (mkdocs + mkdocstrings, API reference from the docstrings); --strict
# turns every warning (a broken link, a docstring griffe cannot read) into a failure.
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

test: lint docs
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --cov=rankloss --cov-report=term:skip-covered

bench: $(VENV)/.installed-bench
	$(BIN)/rankloss bench quick --threads 1 --out $(BENCH_OUT)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage site
