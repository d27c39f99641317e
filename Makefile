# The two commands of the README: `make demo` and `make test`.
# Both create .venv when it is missing. torch is installed first and pinned
# (TORCH_SPEC) so that pip takes the local CPU wheel instead of a multi-GB CUDA
# build; on a GPU box run e.g. `make test TORCH_SPEC="torch==2.13.0 --index-url ..."`
# or install your CUDA torch into .venv before `make`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow venv-base venv docs-deps data browser readme notebooks docs clean-venv

# The package and what it needs to run (`make demo` needs no more), or with it the dev extra (nbdev, pytest, ruff,
# jupyterlab, ...) for `make test` and the notebooks: one pip call either way.
define install
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if $(BIN)/python -c "import torch" 2>/dev/null; then \
	  echo "torch $$($(BIN)/python -c 'import torch; print(torch.__version__)') already in $(VENV)"; \
	else $(BIN)/python -m pip install -q $(TORCH_SPEC); fi
	$(BIN)/python -m pip install -q -e "$(1)"
endef
BASE_STAMP := $(VENV)/.installed-base
$(BASE_STAMP): pyproject.toml
	$(call install,.)
	@touch $(BASE_STAMP)

$(STAMP): pyproject.toml
	$(call install,.[dev])
	@touch $(BASE_STAMP) $(STAMP)

venv-base: $(BASE_STAMP)

venv: $(STAMP)

# The `docs` extra (Sphinx, MyST-NB, furo, websocket-client): only the site's build and its browser test
# (`make docs`, `make test-slow`) need it, so `make test` does not wait for it.
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[dev,docs]"
	@touch $(DOCS_STAMP)

docs-deps: $(DOCS_STAMP)

# Fashion-MNIST from Debian's package (real 60k/10k images); skipped with a message elsewhere.
data:
	@bash tools/install_data.sh

# Headless Chromium from Debian for the docs browser test (tests/test_docs.py, `make test-slow`); skipped with a message elsewhere.
browser:
	@bash tools/install_chromium.sh

demo: venv-base data
	$(BIN)/scoreextra demo

# ruff first (seconds; its rules in pyproject.toml [tool.ruff]), then the width of the code a reader sees
# (tools/line_check.py: every notebook code line, hence the package, and the READMEs' code blocks within 100 characters;
# `python tools/line_check.py --fix` rewrites them), and whether the notebooks read as lessons (tools/lesson_check.py:
# every exported public name followed by a visible example, no visible test battery). Then the notebooks' tests
# (tools/nbtest.py: nbdev-test's `test_nb` on every notebook, NB_JOBS workers, the longest notebooks first; cells
# flagged `#| slow` are left to make test-slow) and pytest side by side. On 2 cores the two keep both cores busy
# (pytest's workers wait on the processes, kernels and locks they start), so the run takes about the CPU seconds of
# both halved. pytest's output comes as it runs, the notebooks' when both are done; the target fails when either
# does. pytest runs TEST_JOBS workers (pytest-xdist), each test file on one worker so that a file's shared fixtures
# (a sweep, a trained model) are built once, the longest files first (tests/conftest.py); one BLAS/OpenMP thread
# each avoids oversubscribing the cores. pytest includes tests/test_export.py: the package equals what nbdev-export
# makes of the notebooks. --durations: where the time goes.
TEST_JOBS ?= 2
NB_JOBS ?= 2
test: venv data
	$(BIN)/ruff check scoreextra tests tools bench
	$(BIN)/python tools/line_check.py
	$(BIN)/python tools/lesson_check.py
	@log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	echo "notebook tests: running alongside pytest, their output follows pytest's"; \
	OMP_NUM_THREADS=1 $(BIN)/python tools/nbtest.py --n-workers $(NB_JOBS) >$$log 2>&1 & nb=$$!; \
	OMP_NUM_THREADS=1 $(BIN)/pytest -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder --durations=10; py=$$?; \
	wait $$nb; nbrc=$$?; echo "---- notebook tests (exit status $$nbrc) ----"; cat $$log; \
	if [ $$py -ne 0 ] || [ $$nbrc -ne 0 ]; then echo "make test: pytest exit status $$py, notebook tests $$nbrc"; exit 1; fi

# The slow set (`.ci/run` runs it after `make test`): end-to-end checks whose parts `make test`
# checks on smaller inputs: the notebook cells flagged `#| slow` (digits' convergence check, 08_prune's pruning curves,
# own-data final trainings, a three-seed run, a papermill sweep), the documentation site built and opened in Chromium
# (tests/test_docs.py), the README's own-data example, a CLI run killed by SIGTERM and rerun, sweeps under submitit
# and papermill kernels, SIGTERM under papermill, DDP resume and a damaged checkpoint under torchrun, the smoke runs
# of the configs that are neither in the default set nor GPU-sized, bench/device_check.sh --cpu-dry-run. The GPU-sized configs' smoke runs (half an hour
# on 2 cores) are left to `pytest -m gpu_sized`.
test-slow: venv docs-deps data browser
	OMP_NUM_THREADS=1 $(BIN)/python tools/nbtest.py --flags slow --flagged-only --n-workers $(NB_JOBS) --timing
	OMP_NUM_THREADS=1 $(BIN)/pytest -m "slow and not gpu_sized" -n $(TEST_JOBS) --dist loadfile --durations=10

# README.md is generated from nbs/index.ipynb (nbdev-readme needs Quarto, absent here).
readme: venv
	$(BIN)/python tools/make_readme.py

# Re-execute the notebooks in place, keeping their outputs (tools/execute_notebooks.py: cwd nbs/, one
# thread, stderr dropped, the code cells' hash stored for tests/test_notebooks.py, nbdev-clean).
# One notebook: make notebooks NBS=nbs/07_gnn.ipynb; two at a time on two free cores: make notebooks JOBS=2
NBS ?= nbs/*.ipynb
JOBS ?= 1
notebooks: venv data
	OMP_NUM_THREADS=1 $(BIN)/python tools/execute_notebooks.py -j $(JOBS) $(NBS)

# The documentation site, built offline into _docs/html/ (open _docs/html/index.html): README as the landing
# page, every notebook with its stored outputs (never executed here), the API reference, the reports.
docs: venv docs-deps
	$(BIN)/python tools/build_docs.py

clean-venv:
	rm -rf $(VENV)
