# alps — reproducible DTI-ALPS analysis.  `make help` lists the targets.
#
#   make paper   create .venv if missing, generate the default cohort, run every notebook,
#                write every table and figure and results/report.html
#   make test    pytest + the whole notebook series on the small `smoke` profile (build/smoke/),
#                then the same series again from scratch (build/rerun/smoke/) and a byte-for-byte
#                comparison of the two runs' tables (determinism)
#
# Every product is a file target with real prerequisites; a failed recipe deletes its target
# (.DELETE_ON_ERROR) and a failed notebook leaves only <name>.failed.ipynb beside it.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON_BOOT ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.alps-installed
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
PROFILE ?= default
# where non-default profiles build (the determinism check reruns the smoke profile in build/rerun)
BUILD_ROOT ?= build

ifeq ($(PROFILE),default)
  DATA := data/default
  OUT  := results
else
  DATA := $(BUILD_ROOT)/$(PROFILE)/data
  OUT  := $(BUILD_ROOT)/$(PROFILE)/results
endif
CONFIG := config/$(PROFILE).yaml
NB  := $(OUT)/notebooks
TAB := $(OUT)/tables
FIG := $(OUT)/figures
DER := $(OUT)/derivatives/alps
RUN := $(PY) -m alps.build.nbrun --profile $(PROFILE)

# Source groups follow the package's folders, so that editing statistics code never reruns the
# imaging (tests/test_architecture.py checks that every module of alps/ is in a group).
CORE_SRC    := $(wildcard alps/*.py alps/build/*.py)
IO_SRC      := $(wildcard alps/io/*.py)
IMAGING_SRC := $(IO_SRC) $(wildcard alps/imaging/*.py alps/pipeline/*.py)
SIM_SRC     := $(IO_SRC) $(wildcard alps/simulation/*.py alps/imaging/*.py)
VALID_SRC   := $(wildcard alps/validation/*.py)
STATS_SRC   := $(wildcard alps/stats/*.py alps/io/tables.py)
FIG_SRC     := $(wildcard alps/figures/*.py alps/pipeline/layout.py) $(STATS_SRC)
CLI_SRC     := $(wildcard alps/cli/*.py)

DATA_STAMP  := $(DATA)/.alps-simulated
# one stamp per config section, rewritten only when that section changes (see alps.config)
CFG := build/config-stamps/$(PROFILE)
cfg = $(CFG)/$(1).json

.PHONY: help paper notebooks data env test pytest smoke determinism lab clean clean-all bench atlas

help: ## Show this help
	@echo "alps — reproducible DTI-ALPS analysis"
	@echo
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "} {printf "  make %-10s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: PROFILE=default|smoke (config/<profile>.yaml), PYTHON_BOOT=$(PYTHON_BOOT)"

# ---------------------------------------------------------------- environment
env: $(STAMP) $(LAB_SETTINGS) ## Create .venv and install alps[dev] (+ Jupyter kernel "alps", JupyterLab settings)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name alps --display-name "Python (alps)" >/dev/null
	@touch $@

# JupyterLab opens the py:percent sources as notebooks (jupytext's viewer as the default for
# Python files): the project's jupyter/overrides.json, installed into the environment
$(LAB_SETTINGS): jupyter/overrides.json | $(STAMP)
	@mkdir -p $(dir $@)
	cp $< $@

# ---------------------------------------------------------------- data
data: $(DATA_STAMP) ## Generate the simulated BIDS cohort of PROFILE (default: data/default)

$(CFG)/%.json: $(CONFIG) | $(STAMP)
	@$(PY) -m alps.config stamp $(PROFILE) $* $@

$(DATA_STAMP): $(SIM_SRC) $(CLI_SRC) $(call cfg,simulate) | $(STAMP)
	rm -rf $(DATA)
	$(VENV)/bin/alps simulate $(DATA) --profile $(PROFILE)
	@touch $@

# ---------------------------------------------------------------- notebooks
# The rules of the notebook series (each notebook, the files it reads and writes, the code and the
# config sections it depends on) and of the report are generated from one manifest,
# alps/manifest.py (with the bootstrap Python: no environment needed), into $(SERIES_MK).
SERIES_MK := build/series.mk
$(SERIES_MK): alps/manifest.py
	@mkdir -p $(dir $@)
	@$(PYTHON_BOOT) -m alps.manifest makefile > $@.tmp && mv $@.tmp $@
include $(SERIES_MK)

notebooks: $(OUT)/report.html ## Run the notebook series for PROFILE (no-op when up to date)

paper: ## Everything: environment, default cohort, all notebooks, tables, figures, report
	$(MAKE) --no-print-directory env
	$(MAKE) --no-print-directory PROFILE=default notebooks
	@echo "Done: open results/report.html (tables in results/tables, figures in results/figures)"

# ---------------------------------------------------------------- tests
pytest: | $(STAMP) ## Unit and integration tests only
	rc=0; $(PY) -m pytest -q -n 2 --dist loadfile || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; exit $$rc

smoke: | $(STAMP) ## The whole notebook series on the small smoke profile (build/smoke)
	$(MAKE) --no-print-directory PROFILE=smoke notebooks

# the deterministic products of a run: every table, the pipeline's cohort tables (timings.tsv is
# run-dependent by design and excluded) and the simulated cohort's tables
DETERMINISM_FILES := 'results/tables/*' 'results/derivatives/alps/[!t]*.tsv' 'data/participants.tsv' \
  'data/derivatives/simulation/*.tsv'
RERUN := build/rerun

determinism: smoke ## Run the smoke series again from scratch in build/rerun and compare the two runs' tables byte for byte
	rm -rf $(RERUN)
	$(MAKE) --no-print-directory PROFILE=smoke BUILD_ROOT=$(RERUN) notebooks
	$(PY) -m alps.compare build/smoke $(RERUN)/smoke --pattern $(DETERMINISM_FILES)

test: ## pytest, the smoke profile of the notebook series, and the determinism check
	$(MAKE) --no-print-directory env
	$(MAKE) --no-print-directory pytest
	$(MAKE) --no-print-directory determinism

# ---------------------------------------------------------------- optional atlas
JHU_DEB := /usr/share/mricron/templates/JHU-WhiteMatter-labels-1mm.nii.gz
atlas: ## Optional: JHU white-matter labels for `--roi jhu` (Debian mricron-data; needs root + apt)
	@if [ -f $(JHU_DEB) ]; then echo "JHU atlas present: $(JHU_DEB)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q mricron-data >/dev/null || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mricron-data >/dev/null; }; \
	  test -f $(JHU_DEB) && echo "installed $(JHU_DEB)"; \
	else echo "not root or no apt-get: install Debian's mricron-data, or FSL (\$$FSLDIR), or set ALPS_JHU_ATLAS"; exit 1; fi

BENCH := results/bench
bench: | $(STAMP) ## Benchmarks (not tests, ~15 min): per-stage time/memory, scaling, registration, real scans -> results/bench/*.csv
	mkdir -p $(BENCH)
	$(PY) benchmarks/bench_simulate.py $(BENCH)/simulate.csv
	$(PY) benchmarks/bench_pipeline.py timing $(BENCH)/pipeline.csv
	$(PY) benchmarks/bench_scale.py $(BENCH)/scale.csv --n-jobs 1 2 --n-subjects 8
	$(PY) benchmarks/bench_registration.py $(BENCH)/registration.csv --work build/bench-registration
	$(PY) benchmarks/bench_multishell.py $(BENCH)/multishell.csv --work build/bench-multishell
	@if [ -d ../shared/data/real_dwi ]; then \
	  $(PY) benchmarks/real_data.py $(BENCH)/real_data.csv --work build/bench-real --roi-radius 2.5 5 --n-jobs 1 && \
	  $(PY) benchmarks/real_data.py $(BENCH)/real_oracle.csv --reuse build/bench-real/derivatives_r2.5_affine --oracle && \
	  $(PY) benchmarks/real_data.py $(BENCH)/real_orientation.csv --reuse build/bench-real/derivatives_r2.5_affine --orientation && \
	  $(PY) benchmarks/real_data.py $(BENCH)/real_slab.csv --reuse build/bench-real/derivatives_r2.5_affine --slab-ratio && \
	  $(PY) benchmarks/real_data.py $(BENCH)/real_noise.csv --reuse build/bench-real/derivatives_r2.5_affine --bootstrap 500 --roi-radius 2.5 5 && \
	  $(PY) benchmarks/tilt_reliability.py build/bench-tilts/out > $(BENCH)/tilt_reliability.md && \
	  $(PY) benchmarks/local_registration.py build/bench-tilts/out $(BENCH)/local_registration.csv; \
	else echo "../shared/data/real_dwi not found: real-scan benchmark skipped"; fi

# ---------------------------------------------------------------- interactive
# checkpoints go to build/lab-checkpoints, not into notebooks/; the data are not made here: the
# notebooks' empty paths are the default profile's (`make data` generates its cohort)
LAB_CHECKPOINTS := $(abspath build/lab-checkpoints)
lab: $(LAB_SETTINGS) | $(STAMP) ## JupyterLab on notebooks/ (sources open as notebooks, kernel "alps"; no data generated)
	@test -f $(DATA_STAMP) || echo "note: $(DATA) not generated yet ('make data'); the notebooks' empty paths point there"
	@mkdir -p "$(LAB_CHECKPOINTS)"
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --FileCheckpoints.checkpoint_dir="$(LAB_CHECKPOINTS)"

clean: ## Remove results and build outputs (keeps data, config stamps and .venv)
	rm -rf results $(wildcard build/*/results)

clean-all: clean ## Also remove generated data, build/ (incl. build/rerun) and .venv
	rm -rf data/default build $(VENV)
