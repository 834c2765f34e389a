# ccop_plugin — the two commands of the README, and the setup they share.
#   make demo   the main job: synthetic data -> proposals -> CCOP -> Mask R-CNN -> report
#   make test   the house lint (ruff.toml), then the whole test suite
#   make test-fast  the lint, then the unit tier (no slow, e2e, packaging)
# Both create/refresh the virtual environment first (seconds when up to date).
VENV ?= .venv
PY := $(VENV)/bin/python
export CCOP_VENV := $(abspath $(VENV))

.PHONY: install lint test test-fast demo compare science science-history \
	science-related science-all science-protocol science-ablations \
	science-ablations-more clean-demo

install:
	bash tools/setup_env.sh

LINT_PATHS := ccop_plugin tools tests

lint: install
	@$(PY) -m ruff check $(LINT_PATHS) || { \
	  echo 'make test: lint failed (ruff.toml). Fix the lines above;' \
	       'imports: $(PY) -m ruff check --fix $(LINT_PATHS)' >&2; \
	  exit 1; }

# every tier (pytest.ini names them); the 15 slowest tests at the end.
# pytest-xdist runs the test files on PYTEST_WORKERS processes (each test
# uses one torch thread, tests/conftest.py; one file's tests share one
# worker, so a file's module fixtures are made once); PYTEST_WORKERS=0:
# one process
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS) --dist loadfile
test: lint
	$(PY) -m pytest tests -q -p no:cacheprovider $(XDIST) --durations=15 \
	  $(PYTEST_ARGS)

# the unit tier: the tests not marked slow, e2e or packaging
FAST_TIER := not slow and not e2e and not packaging
test-fast: lint
	$(PY) -m pytest tests -q -p no:cacheprovider $(XDIST) \
	  -m "$(FAST_TIER)" --durations=15 $(PYTEST_ARGS)

demo: install
	$(PY) tools/run_demo.py $(DEMO_ARGS)

compare: install
	$(PY) tools/compare_pretraining.py $(COMPARE_ARGS)

# the science runs of docs/science.md share the data, seeds and test split
SCIENCE_COMMON := --seeds 3 --num-unlabeled 200 --num-test 100

# the comparison on the science protocol (docs/science.md, "What `make
# science` runs"): the cpu-science configs (width-16 ResNet-18, 128-px
# views, their own batch, warm-up and schedule), the width-16 Mask R-CNN
# fine-tuned on the first 120 of the 2000 labelled train images (the probe
# and its positive control read all 2000: the control passes only with
# them), every run seed on each data seed's own data and proposals; rerun to
# resume. The default grid (CCOP, MoCo v2, random init x 2 run seeds x 2
# data seeds) is about 1 h 25 min on 2 CPU cores; the full grid (7 methods
# x 5 run seeds x 2 data seeds, about 9 h there) is
# `make science SCIENCE_GRID=full` (estimates from a one-seed pilot's
# stage times, docs/science.md).
SCIENCE_GRID ?= fits-2h
SCIENCE_GRID_fits-2h := --methods ccop mocov2 none
SCIENCE_GRID_full := --methods ccop mocov2 none ccop_no_curriculum \
	ccop_no_intra ccop_no_inter ccop_intra_key
# run seeds per data seed: 2 (fits-2h) or 5 (full) unless given
SCIENCE_SEEDS ?= $(if $(filter full,$(SCIENCE_GRID)),5,2)
SCIENCE_BASE_ARGS := --protocol cpu-science --work-dir work_dirs/science_cpu \
	--data-seeds 2 --num-unlabeled 2000 --num-train 2000 --num-val 200 \
	--num-test 300 --finetune-images 120
SCIENCE_DATA_ARGS := $(SCIENCE_BASE_ARGS) --supervised-control
SCIENCE_ARGS ?= $(SCIENCE_DATA_ARGS) $(SCIENCE_GRID_$(SCIENCE_GRID)) \
	--seeds $(SCIENCE_SEEDS) --record docs/benchmarks/science.json
science: install
	@test -n "$(SCIENCE_GRID_$(SCIENCE_GRID))" || { \
	  echo 'make science: SCIENCE_GRID must be fits-2h or full' >&2; \
	  exit 1; }
	$(PY) tools/compare_pretraining.py $(SCIENCE_ARGS)

# the four ablations on the science protocol at SCIENCE_ABLATION_SEEDS run
# seeds (default 3, the record's) x 2 data seeds, beside CCOP, MoCo v2 and
# random init (whose runs make science made are reused; same work dir):
# about 3 h 25 min on 2 cores after make science (24 runs of about 510 s);
# its own record, read against CCOP
SCIENCE_ABLATION_SEEDS ?= 3
SCIENCE_ABLATIONS_ARGS ?= $(SCIENCE_DATA_ARGS) $(SCIENCE_GRID_full) \
	--seeds $(SCIENCE_ABLATION_SEEDS) \
	--record docs/benchmarks/science_ablations.json
science-ablations: install
	$(PY) tools/compare_pretraining.py $(SCIENCE_ABLATIONS_ARGS)

# one more run seed (SCIENCE_MORE_SEED, from 3 on) of the seven methods, run
# later (another session, another machine) into its own record
# docs/benchmarks/science_ablations_seed<S>.json, then every such record
# joined with make science's and make science-ablations' records into
# science_ablations_merged.json (+ .md table, .png plot): the run seeds
# every method and the probe's control have (the control of run seeds 0-4
# is make science's: SCIENCE_SEEDS=5); a run two records both measured
# keeps the later record's values, the other's listed (docs/science.md).
# About 1 h 50 min a seed on 2 CPU cores.
SCIENCE_MORE_SEED ?= 3
SCIENCE_MERGED := docs/benchmarks/science_ablations_merged
science-ablations-more: install
	$(PY) tools/compare_pretraining.py $(SCIENCE_BASE_ARGS) \
	  $(SCIENCE_GRID_full) --seeds 1 --first-run-seed $(SCIENCE_MORE_SEED) \
	  --record docs/benchmarks/science_ablations_seed$(SCIENCE_MORE_SEED).json
	$(PY) tools/merge_science_records.py \
	  docs/benchmarks/science.json docs/benchmarks/science_ablations.json \
	  $$(ls docs/benchmarks/science_ablations_seed*.json | sort -V) \
	  --record $(SCIENCE_MERGED).json --table $(SCIENCE_MERGED).md \
	  --figure $(SCIENCE_MERGED).png

# the history table of docs/science.md: CCOP, MoCo v2, no pre-training and
# the four ablations with the tiny configs at 200 iterations (no method
# learns its task there), held-out test split; 1 h 40 min on 2 CPU cores
SCIENCE_HISTORY_ARGS ?= --work-dir work_dirs/science $(SCIENCE_COMMON) \
	--protocol cpu-tiny \
	--methods ccop mocov2 none ccop_no_curriculum ccop_no_intra \
	ccop_no_inter ccop_intra_key --pretrain-iters 200 \
	--record docs/benchmarks/science_200iters.json
science-history: install
	$(PY) tools/compare_pretraining.py $(SCIENCE_HISTORY_ARGS)

# the related methods (heat-map proposals, PLRC, MCL) against CCOP, MoCo v2
# and no pre-training at the same 200 iterations; shares make science's work
# dir with make science-history, so after it only the three related
# methods run (42 min)
SCIENCE_RELATED_ARGS ?= --work-dir work_dirs/science $(SCIENCE_COMMON) \
	--methods ccop mocov2 none heatmap plrc mcl --pretrain-iters 200 \
	--record docs/benchmarks/science_related.json
science-related: install
	$(PY) tools/compare_pretraining.py $(SCIENCE_RELATED_ARGS)

# every method (also heat-map proposals, PLRC, MCL) at 100 iterations, the
# budget at which the ten-method table fits about 2 h on 2 CPU cores
SCIENCE_ALL_ARGS ?= --work-dir work_dirs/science_all $(SCIENCE_COMMON) \
	--methods all --pretrain-iters 100 \
	--record docs/benchmarks/science_100iters.json
science-all: install
	$(PY) tools/compare_pretraining.py $(SCIENCE_ALL_ARGS)

# the protocol sweep of docs/science.md (positive controls): MoCo v2 runs,
# one lever at a time, until its final image InfoNCE is <= 0.75 x chance
# and its features probe above random init's (each point's checkpoint and
# five random inits probed on the val split of SCIENCE_PROBE_DATA); 1-5 min
# a point on 2 cores; a rerun keeps the points of its record
SCIENCE_PROBE_DATA ?= work_dirs/probe_s0
SCIENCE_PROTOCOL_ARGS ?= --work-dir work_dirs/protocol_sweep \
	--record docs/benchmarks/science_protocol_sweep.json \
	--probe-data $(SCIENCE_PROBE_DATA)
science-protocol: install
	$(PY) tools/generate_dataset.py --out $(SCIENCE_PROBE_DATA) --seed 0 \
	  --num-unlabeled 200 --num-train 2000 --num-val 200 --num-test 300
	$(PY) tools/sweep_science_protocol.py $(SCIENCE_PROTOCOL_ARGS)

clean-demo:
	rm -rf work_dirs/demo
