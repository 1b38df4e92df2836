# The two commands: `make book` (execute every chapter, render the book) and `make test`.
# Both create .venv on first use and reinstall only when pyproject.toml or constraints.txt change.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= full
JOBS ?= 1
# FORCE=1: execute every notebook even when its cached execution is up to date
FORCE ?=
RUN_FLAGS := --profile $(PROFILE) --jobs $(JOBS)$(if $(FORCE), --force)
PYTEST_ARGS ?=

.PHONY: help book results notebooks html test lint format kernel-check gpu-run studies studies-stores lock clean

help:
	@echo "make book      execute the notebooks whose inputs changed (PROFILE=$(PROFILE), FORCE=1: all) and render _build/html"
	@echo "make results   execute as make book, then copy the chapters' results into data/results (the committed ones)"
	@echo "make test      ruff, unit tests, smoke-profile notebooks and a warnings-as-errors book build"
	@echo "make kernel-check   compile the CUDA source with nvcc for sm_80 and sm_90"
	@echo "make gpu-run OUT=dir   the prepared GPU run (scripts/gpu_run.sh): results into dir"
	@echo "make studies   rerun every CPU study the chapters render from data/results (hours; GPA_CLONE=dir adds the authors' code)"
	@echo "make studies-stores  the recommendation claims over STORES=8 stores, at 20,000 and 100,000 customers, and the drift control (JOBS=N; hours)"
	@echo "make lock      rewrite constraints.txt from the current .venv"
	@echo "make clean     remove _build"

$(STAMP): pyproject.toml setup.py constraints.txt scripts/install_lightfm.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[book,dev,anchors]"
	bash scripts/install_lightfm.sh $(PY)
	@touch $(STAMP)

book: $(STAMP)
	$(PY) -m gpa_lib.book run $(RUN_FLAGS)
	$(PY) -m gpa_lib.book build --profile $(PROFILE)

# A reader's `make book` writes results under _build only and reports whether they agree with the
# committed data/results; refreshing the committed files is this explicit target.
results: $(STAMP)
	$(PY) -m gpa_lib.book run $(RUN_FLAGS) --publish

notebooks: $(STAMP)
	$(PY) -m gpa_lib.book run $(RUN_FLAGS)

html: $(STAMP)
	$(PY) -m gpa_lib.book build --profile $(PROFILE)

kernel-check: $(STAMP)
	$(PY) -m gpa_lib.attention.kernel.cuda.check

# No venv: on a lent GPU machine the system python3 holds torch (GPU_PYTHON to choose another).
GPU_PYTHON ?= python3
gpu-run:
	@test -n "$(OUT)" || { echo "usage: make gpu-run OUT=dir"; exit 2; }
	PYTHON=$(GPU_PYTHON) bash scripts/gpu_run.sh $(OUT)

# Every CPU study whose committed JSON (data/results/) the chapters render, with the arguments of the
# committed runs. Hours on a 2-core machine: run it idle, from a clean commit (the JSON's provenance
# names the commit, "-dirty" otherwise). GPA_CLONE=<clone of zalandoresearch/gpa> adds the comparison
# with the authors' code, imported from there and never copied into this project.
GPA_CLONE ?=
STUDY_THREADS ?= 2
studies: $(STAMP)
	for t in 1 2; do $(PY) -m gpa_lib.bench attention --training --sizes 128 \
	  --methods sdpa recompute cpu reference --repeats 3 --threads $$t || exit 1; done
	$(if $(GPA_CLONE),$(PY) -m gpa_lib.bench official --path $(GPA_CLONE) --threads $(STUDY_THREADS),@echo "GPA_CLONE unset: official_gpa.json not rerun")
	$(PY) -m gpa_lib.bench hierarchy --train-sides 512 1024 2048
	$(PY) -m gpa_lib.bench hierarchy --affinity dot --no-timing
	$(PY) -m gpa_lib.bench hierarchy --features random --no-timing
	$(PY) -m gpa_lib.bench pose seeds --threads $(STUDY_THREADS)
	$(PY) -m gpa_lib.bench pose tradeoff --retrain-topk 4,64 --threads $(STUDY_THREADS)
	$(PY) -m gpa_lib.bench pose scaling --seeds 0,1 --sizes 64,96 --scaling-steps 80 \
	  --cost-sizes 128,192 --n-train 500 --n-test 50 --threads $(STUDY_THREADS)
	$(PY) -m gpa_lib.bench recsys --study backtest --customers 20000
	$(PY) -m gpa_lib.bench recsys --study ablation --customers 10000
	$(PY) -m gpa_lib.bench recsys --study sasrec-softmax --customers 20000 --cutoffs 3 --seeds 0,1
	$(PY) -m gpa_lib.bench recsys --study drift --customers 10000 --weeks 78 --cutoffs 3 \
	  --seeds 0,1 --eval-customers 5000
	$(PY) -m gpa_lib.bench recsys --study timing
	$(PY) -m gpa_lib.bench recsys --study dna-variants --threads 1
	$(PY) -m gpa_lib.bench hm
	$(MAKE) studies-stores

# The recommendation claims over STORES independent stores (store seeds 0..STORES-1): one store study
# holds the models of the backtest and the ablation claims (gpa_lib/recsys/eval/claims.py), at
# 10,000 customers, 3 test cutoffs and 2 training seeds per store; shards under _build/studies/,
# resumable, merged into data/results/claims_stores.json with hierarchical intervals (stores,
# cutoffs, customers) and Holm-adjusted verdicts. About 8 minutes a store at one thread on a 2-core
# machine: spread the shards over machines with --shard I/N (the same command on each, then once more
# to merge), or over local cores with JOBS. The verdicts use the hierarchical bootstrap's p; the
# sign-flip p over stores stands beside it and cannot go below 2/2^STORES (0.0078 for 8 stores).
# The same claims then at 20,000 customers (5 stores) and at the paper's 100,000 (one store), for
# chapter 5's size sensitivity. Last the drift control: the claims' stores again with static tastes
# (drift 0; the claims' stores drift at 0.7), for the models the control compares.
STORES ?= 8
JOBS ?= 1
CLAIM_MODELS = popularity,static_cf,lightfm,fashion_dna,lstm,lstm_paper,context_popularity
# The paper's scale, one store: without LightFM (about 10x its 30 s fit per setting) and the paper's
# LSTM, whose claims (cold start, what the context term adds) the 10,000 and 20,000 families judge.
CLAIM_MODELS_100K = popularity,static_cf,fashion_dna,lstm,context_popularity
studies-stores: $(STAMP)
	$(PY) -m gpa_lib.bench recsys --study backtest --customers 10000 --cutoffs 3 --seeds 0,1 \
	  --models $(CLAIM_MODELS) --threads 1 --stores $(STORES) --jobs $(JOBS) --name claims_stores
	$(PY) -m gpa_lib.bench recsys --study backtest --customers 20000 --cutoffs 3 --seeds 0,1 \
	  --models $(CLAIM_MODELS) --threads 1 --stores 5 --jobs $(JOBS) --name claims_stores_20k
	$(PY) -m gpa_lib.bench recsys --study backtest --customers 100000 --cutoffs 3 --seeds 0,1 \
	  --models $(CLAIM_MODELS_100K) --threads 1 --stores 1 --jobs $(JOBS) --name claims_stores_100k
	$(PY) -m gpa_lib.bench recsys --study backtest --customers 10000 --cutoffs 3 --seeds 0,1 \
	  --models static_cf,fashion_dna,lstm --threads 1 --stores $(STORES) --jobs $(JOBS) --drift 0 \
	  --name drift0_stores

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/' \
	  | { echo "# Pinned versions for a reproducible environment (pip install -c constraints.txt -e \".[book,dev]\")."; \
	      echo "# Regenerate with \`make lock\` after changing dependencies in pyproject.toml."; cat; } > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt

clean:
	rm -rf _build
