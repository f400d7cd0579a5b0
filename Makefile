# flow-planner: one-command setup, demo and tests on a machine without a ROS install.
#   make setup   .venv (pinned ROS 2 Jazzy wheels, CPU torch, torchcfm, mujoco) + colcon build into install/
#   make test    setup, then ruff and the whole test suite
#   make demo    setup, then the demo of what exists so far
#   make bench   setup, then every benchmark script (numbers printed, never asserted)
#   make pipeline  setup, then the default checkpoint from nothing: collect -> merge -> train -> evaluate
#                  (straight vs flow vs CEM in one run on held-out cluttered scenes), shipped
#                  (COLLECT=ray: collection on Ray; TRAIN_NPROC=N: training with N torchrun processes)
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
DEPS_STAMP := $(VENV)/.deps-stamp
BUILD_STAMP := install/.build-stamp
# Run a command inside the workspace environment (venv + install/setup.bash).
IN_WS := source $(VENV)/bin/activate && source install/setup.bash &&
WORKSPACE_INPUTS := $(shell find src launch config -type f -not -name '*.pyc' -not -path '*/__pycache__/*' 2>/dev/null) colcon.meta
PYTEST_ARGS ?=

.PHONY: setup system-deps test lint demo bench pipeline clean distclean

setup: $(BUILD_STAMP)

# Libraries MuJoCo's headless renderer needs (EGL/OSMesa); installed with apt when missing and allowed.
system-deps:
	@tools/install_system_deps.sh

$(DEPS_STAMP): requirements/lock.txt tools/setup_venv.sh tools/fix_ros_wheel_cmake.py
	@$(MAKE) --no-print-directory system-deps
	tools/setup_venv.sh
	touch $@

$(BUILD_STAMP): $(DEPS_STAMP) $(WORKSPACE_INPUTS)
	source $(VENV)/bin/activate && source $(VENV)/local_setup.bash && \
	  colcon --log-base log build --symlink-install --metas colcon.meta --event-handlers console_direct- summary+ 2>&1 | grep -v "is ignored"
	$(IN_WS) python -m flow_planner_common.compiled_kernels
	touch $@

lint: $(DEPS_STAMP)
	$(VENV)/bin/ruff check .

test: setup lint
	$(IN_WS) python -m pytest $(PYTEST_ARGS)

demo: setup
	$(IN_WS) python tools/demo.py

BENCHMARKS ?= $(sort $(wildcard benchmarks/bench_*.py))
bench: setup
	@for script in $(BENCHMARKS); do echo "=== $$script"; $(IN_WS) python $$script || exit 1; done

# Reproduces src/flow_planner_ros/checkpoints/default.* (EPISODES, EPOCHS, ... override; see tools/pipeline.sh).
# COLLECT=ray collects with Ray tasks (SHARDS workers; RAY_ADDRESS=HOST:PORT joins a cluster), TRAIN_NPROC=N trains
# with N torchrun processes (DDP; TRAIN_DEVICE=cuda for GPUs), e.g. `make pipeline COLLECT=ray TRAIN_NPROC=2`.
# SCENES=family (default) trains on the cluttered scene family, SCENES=flat on the old tray-pose grid.
COLLECT ?= ros
TRAIN_NPROC ?= 1
SCENES ?= family
pipeline: setup
	$(IN_WS) COLLECT=$(COLLECT) TRAIN_NPROC=$(TRAIN_NPROC) SCENES=$(SCENES) tools/pipeline.sh --ship
	rm -f $(BUILD_STAMP) && $(MAKE) --no-print-directory setup

clean:
	rm -rf build install log

distclean: clean
	rm -rf $(VENV)
