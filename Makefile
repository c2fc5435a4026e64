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
PARTICIPANTS := $(DATA)/participants.tsv
TRUTH       := $(DATA)/derivatives/simulation/ground_truth.tsv
ALPS_TSV    := $(TAB)/alps.tsv

NOTEBOOKS := 01_preprocess 02_alps 03_group_tests 04_regression 05_correlation 06_mediation 07_figures
EXECUTED  := $(foreach n,$(NOTEBOOKS),$(NB)/$(n).ipynb)

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

$(PARTICIPANTS) $(TRUTH): $(DATA_STAMP) ;

# ---------------------------------------------------------------- notebooks
$(NB)/01_preprocess.ipynb $(DER)/preprocess.tsv &: notebooks/01_preprocess.py $(DATA_STAMP) $(IMAGING_SRC) $(FIG_SRC) $(CORE_SRC) $(call cfg,pipeline) $(call cfg,notebooks.01_preprocess)
	$(RUN) 01_preprocess $(NB)/01_preprocess.ipynb -p data_dir $(DATA) -p derivatives_dir $(DER) \
	  -p preprocess_tsv $(DER)/preprocess.tsv

$(NB)/02_alps.ipynb $(ALPS_TSV) $(TAB)/qc.tsv $(TAB)/provenance.tsv $(TAB)/alps_validation.csv $(TAB)/rotation_sweep.csv &: notebooks/02_alps.py $(DER)/preprocess.tsv $(IMAGING_SRC) $(SIM_SRC) $(VALID_SRC) $(CORE_SRC) $(call cfg,pipeline) $(call cfg,notebooks.02_alps)
	$(RUN) 02_alps $(NB)/02_alps.ipynb -p data_dir $(DATA) -p derivatives_dir $(DER) \
	  -p truth_table $(TRUTH) -p alps_tsv $(ALPS_TSV) -p qc_tsv $(TAB)/qc.tsv -p provenance_tsv $(TAB)/provenance.tsv \
	  -p validation_csv $(TAB)/alps_validation.csv -p rotation_sweep_csv $(TAB)/rotation_sweep.csv

STATS_IN := $(ALPS_TSV) $(PARTICIPANTS) $(STATS_SRC) $(CORE_SRC)

$(NB)/03_group_tests.ipynb $(TAB)/demographics.csv $(TAB)/group_tests.csv $(TAB)/posthoc.csv $(TAB)/ancova.csv $(TAB)/exclusions.csv $(TAB)/harmonisation.csv &: notebooks/03_group_tests.py $(STATS_IN) $(call cfg,notebooks.03_group_tests) $(call cfg,design)
	$(RUN) 03_group_tests $(NB)/03_group_tests.ipynb -p alps_table $(ALPS_TSV) -p participants $(PARTICIPANTS) \
	  -p demographics_csv $(TAB)/demographics.csv -p group_tests_csv $(TAB)/group_tests.csv \
	  -p posthoc_csv $(TAB)/posthoc.csv -p ancova_csv $(TAB)/ancova.csv -p exclusions_csv $(TAB)/exclusions.csv \
	  -p harmonisation_csv $(TAB)/harmonisation.csv

$(NB)/04_regression.ipynb $(TAB)/regression.csv $(TAB)/regression_model.csv &: notebooks/04_regression.py $(STATS_IN) $(call cfg,notebooks.04_regression) $(call cfg,design)
	$(RUN) 04_regression $(NB)/04_regression.ipynb -p alps_table $(ALPS_TSV) -p participants $(PARTICIPANTS) \
	  -p regression_csv $(TAB)/regression.csv -p regression_model_csv $(TAB)/regression_model.csv

$(NB)/05_correlation.ipynb $(TAB)/correlations.csv &: notebooks/05_correlation.py $(STATS_IN) $(call cfg,notebooks.05_correlation) $(call cfg,design)
	$(RUN) 05_correlation $(NB)/05_correlation.ipynb -p alps_table $(ALPS_TSV) -p participants $(PARTICIPANTS) \
	  -p correlations_csv $(TAB)/correlations.csv

$(NB)/06_mediation.ipynb $(TAB)/mediation.csv $(TAB)/reproduction.csv $(TAB)/key_numbers.json $(TAB)/truth_check.csv &: notebooks/06_mediation.py $(STATS_IN) $(call cfg,notebooks.06_mediation) $(call cfg,design) $(TRUTH)
	$(RUN) 06_mediation $(NB)/06_mediation.ipynb -p alps_table $(ALPS_TSV) -p participants $(PARTICIPANTS) \
	  -p truth_table $(TRUTH) -p mediation_csv $(TAB)/mediation.csv \
	  -p reproduction_csv $(TAB)/reproduction.csv -p key_numbers_json $(TAB)/key_numbers.json \
	  -p truth_check_csv $(TAB)/truth_check.csv

TABLES := $(ALPS_TSV) $(TAB)/qc.tsv $(TAB)/provenance.tsv $(TAB)/alps_validation.csv $(TAB)/rotation_sweep.csv $(TAB)/demographics.csv \
  $(TAB)/group_tests.csv $(TAB)/posthoc.csv $(TAB)/ancova.csv $(TAB)/regression.csv \
  $(TAB)/regression_model.csv $(TAB)/correlations.csv $(TAB)/mediation.csv $(TAB)/reproduction.csv \
  $(TAB)/key_numbers.json $(TAB)/harmonisation.csv $(TAB)/truth_check.csv
FIGURES := $(foreach f,fig1_method fig2_groups fig3_regression fig4_correlations fig5_mediation \
  figS1_qc_montage figS2_measured_vs_truth figS3_rotation figS4_harmonisation,$(FIG)/$(f).png $(FIG)/$(f).pdf)

$(NB)/07_figures.ipynb $(FIGURES) &: notebooks/07_figures.py $(TABLES) $(PARTICIPANTS) $(TRUTH) $(FIG_SRC) $(CORE_SRC) $(call cfg,notebooks.07_figures) $(call cfg,design)
	$(RUN) 07_figures $(NB)/07_figures.ipynb -p tables_dir $(TAB) -p figures_dir $(FIG) \
	  -p derivatives_dir $(DER) -p data_dir $(DATA) -p alps_table $(ALPS_TSV) -p participants $(PARTICIPANTS) \
	  -p posthoc_csv $(TAB)/posthoc.csv -p regression_csv $(TAB)/regression.csv \
	  -p correlations_csv $(TAB)/correlations.csv -p mediation_csv $(TAB)/mediation.csv \
	  -p harmonisation_csv $(TAB)/harmonisation.csv -p truth_table $(TRUTH) -p rotation_sweep_csv $(TAB)/rotation_sweep.csv

$(OUT)/report.html: $(EXECUTED) $(FIGURES) $(TABLES) $(CORE_SRC)
	$(PY) -m alps.build.report --profile $(PROFILE) --out-dir $(OUT) --data-dir $(DATA) --output $@

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
bench: | $(STAMP) ## Benchmarks (not tests, ~25 min): per-stage time/memory, scaling, registration, real scans -> results/bench/*.csv
	mkdir -p $(BENCH)
	$(PY) benchmarks/bench_simulate.py $(BENCH)/simulate.csv
	$(PY) benchmarks/bench_pipeline.py timing $(BENCH)/pipeline.csv
	$(PY) benchmarks/bench_scale.py $(BENCH)/scale.csv --n-jobs 1 2 --n-subjects 8
	$(PY) benchmarks/bench_registration.py $(BENCH)/registration.csv --work build/bench-registration
	$(PY) benchmarks/bench_multishell.py $(BENCH)/multishell.csv --work build/bench-multishell
	$(PY) benchmarks/bench_distortion.py sim $(BENCH)/distortion_sim.csv --subjects 3 --work build/bench-distortion-sim
	@if [ -d ../shared/data/real_dwi ]; then \
	  $(PY) benchmarks/real_data.py $(BENCH)/real_data.csv --work build/bench-real --roi-radius 2.5 5 --n-jobs 1 && \
	  $(PY) benchmarks/real_data.py $(BENCH)/real_oracle.csv --reuse build/bench-real/derivatives_r2.5_affine --oracle && \
	  $(PY) benchmarks/real_data.py $(BENCH)/real_orientation.csv --reuse build/bench-real/derivatives_r2.5_affine --orientation && \
	  $(PY) benchmarks/real_data.py $(BENCH)/real_slab.csv --reuse build/bench-real/derivatives_r2.5_affine --slab-ratio && \
	  $(PY) benchmarks/real_data.py $(BENCH)/real_noise.csv --reuse build/bench-real/derivatives_r2.5_affine --bootstrap 500 --roi-radius 2.5 5 && \
	  $(PY) benchmarks/tilt_reliability.py build/bench-tilts/out > $(BENCH)/tilt_reliability.md && \
	  $(PY) benchmarks/local_registration.py build/bench-tilts/out $(BENCH)/local_registration.csv && \
	  $(PY) benchmarks/bench_distortion.py real $(BENCH)/distortion_real.csv --work build/bench-distortion-real; \
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
