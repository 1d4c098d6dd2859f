# kl-bench: `make bench` and `make test` are all a newcomer needs; both create .venv on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# What a benchmark needs, and on top of it what the tests, the linters and the cluster test need:
# `make bench` installs only the first.
INSTALLED := $(VENV)/.installed
INSTALLED_DEV := $(VENV)/.installed-dev
CONFIG ?= default

.PHONY: bench test lint bench-quick ci-bench bench-pytest clean-venv gpu-wheels bench-gpu

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "kl-bench needs Python >= 3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(INSTALLED)

$(INSTALLED_DEV): $(INSTALLED)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED_DEV)

bench: $(INSTALLED)
	$(PY) -m bench run --config $(CONFIG)

bench-quick: $(INSTALLED)
	$(PY) -m bench run --quick

# Style (ruff) and the architecture (import-linter's contracts in pyproject.toml: bench/'s layers,
# TensorFlow only inside measure/, no import cycle).
lint: $(INSTALLED_DEV)
	$(VENV)/bin/ruff check bench vae_impls tests
	$(VENV)/bin/ruff format --check --quiet bench vae_impls tests
	$(VENV)/bin/lint-imports --no-cache

# The main suite runs the step benchmarks once under Keras 3; Keras 2 needs its own process.
test: $(INSTALLED_DEV)
	$(PY) -m pytest
	KLBENCH_API=keras2 $(PY) -m pytest tests/benchmarks

# The step-time regression gate against bench/baseline.json; .ci/run runs it after the tests.
# A recipe regresses when its paired ratio to plain_ae rose over 6% (the command's default) and
# its 95% CI lies wholly above the baseline's ratio; GATE_TOLERANCE=0.15 widens the 6%.
GATE_TOLERANCE ?=
# CI machines report the same hostname and CPU model yet differ in speed (docs/gate.md), so there
# the floor's own ms/step (checked when the baseline's host looks like this one) only catches a
# collapse; the command's default 25% is for a developer's own machine.
GATE_FLOOR_TOLERANCE ?= 4
# The floor's ratio to the yardstick travels between machines: GATE_YARDSTICK_TOLERANCE=0.15
# widens the command's default 8% as GATE_TOLERANCE widens the recipes'.
GATE_YARDSTICK_TOLERANCE ?=
ci-bench: $(INSTALLED)
	$(PY) -m bench check $(if $(GATE_TOLERANCE),--tolerance $(GATE_TOLERANCE)) \
		$(if $(GATE_YARDSTICK_TOLERANCE),--yardstick-tolerance $(GATE_YARDSTICK_TOLERANCE)) \
		--floor-tolerance $(GATE_FLOOR_TOLERANCE)

# Timed step benchmarks, saved as JSON under .benchmarks/ (one file per Keras package).
bench-pytest: $(INSTALLED_DEV)
	KLBENCH_API=keras2 $(PY) -m pytest tests/benchmarks --benchmark-enable --benchmark-save=keras2
	KLBENCH_API=keras3 $(PY) -m pytest tests/benchmarks --benchmark-enable --benchmark-save=keras3

# The backend matrix on a machine with JAX and/or PyTorch (CUDA) but no TensorFlow (docs/gpu.md).
# Here, where the package registries can be reached: the wheels such a machine lacks, for its
# Python, into .whl/ (about 20 MB): Keras 3, mlxtend and their own needs it lacks; and the notebook
# kernel's packages (post VII's notebook runs in a Jupyter kernel) with everything they need,
# less what a CUDA image has already (GPU_IMAGE_HAS: pandas', matplotlib's, rich's, PyTorch's).
GPU_PYTHON ?= 3.12
GPU_WHEELS := "keras==3.15.*" "mlxtend>=0.23" namex optree
GPU_KERNEL_WHEELS := nbformat nbclient jupyter-client ipykernel
GPU_IMAGE_HAS := packaging pygments python_dateutil six tzdata typing_extensions
GPU_PLATFORM := --only-binary=:all: --implementation cp --python-version $(GPU_PYTHON) \
	--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	--platform manylinux2014_x86_64
gpu-wheels:
	$(PYTHON) -m pip download --quiet --no-deps $(GPU_PLATFORM) -d .whl $(GPU_WHEELS)
	$(PYTHON) -m pip download --quiet $(GPU_PLATFORM) -d .whl $(GPU_KERNEL_WHEELS)
	cd .whl && rm -f $(addsuffix -*.whl,$(GPU_IMAGE_HAS))

# There, with its own python3 (no venv, nothing fetched): the wheels into .whl/site, then the
# gpu config on every installed API (GPU_APIS="keras3-jax keras3-jax-port" for fewer) under its
# budget (BUDGET=4m for another).
GPU_APIS ?=
BUDGET ?=
bench-gpu:
	python3 -m pip install --quiet --no-index --no-deps --no-compile --upgrade \
		--target .whl/site .whl/*.whl
	PYTHONPATH=.whl/site python3 -m bench run --config gpu $(if $(GPU_APIS),--apis $(GPU_APIS)) \
		$(if $(BUDGET),--budget $(BUDGET))

clean-venv:
	rm -rf $(VENV)
