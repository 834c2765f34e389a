# ccop_plugin — the two commands of the README, and the setup they share.
#   make demo   the main job: synthetic data -> proposals -> CCOP -> Mask R-CNN -> report
#   make test   the test suite
# Both create/refresh the virtual environment first (seconds when up to date).
VENV ?= .venv
PY := $(VENV)/bin/python
export CCOP_VENV := $(abspath $(VENV))

.PHONY: install test demo compare clean-demo

install:
	bash tools/setup_env.sh

test: install
	$(PY) -m pytest tests -q -p no:cacheprovider $(PYTEST_ARGS)

demo: install
	$(PY) tools/run_demo.py $(DEMO_ARGS)

compare: install
	$(PY) tools/compare_pretraining.py $(COMPARE_ARGS)

clean-demo:
	rm -rf work_dirs/demo
