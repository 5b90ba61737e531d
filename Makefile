# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: install demo demo-train test test-fast scale gpu gpu-wheels clean

install: $(STAMP)

# Re-install only when the project's requirements change. Dev/CI installs pin torch==2.13.0 (the
# CPU build on this disk) through constraints-dev.txt; pyproject keeps a range for users.
$(STAMP): pyproject.toml constraints-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints-dev.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/genprop demo --pretrained --out $(DEMO_OUT)

# The DAG from scratch: shards, a short Ray Train run of the tiny model, then propagate/evaluate/report.
demo-train: $(STAMP)
	$(VENV)/bin/genprop demo --out $(DEMO_OUT)-train

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m 'not slow and not gpu' $(PYTEST_ARGS)

# The capacity plan for a GPU cluster (docs/scale.md; about 2 minutes on a 2-core CPU, no GPU).
scale: $(STAMP)
	$(PY) bench/plan_capacity.py --out docs/scale.md --json docs/runs/plan-capacity.json

# Run on a lent GPU machine (torch with CUDA, no network): see scripts/gpu.sh.
gpu:
	bash scripts/gpu.sh

# Here: the wheels the GPU machine lacks (Python 3.12), into .whl/ (git-ignored), for the device call to carry.
gpu-wheels: $(STAMP)
	rm -rf .whl && $(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .whl "diffusers>=0.42,<0.43" av importlib-metadata ftfy wcwidth

clean:
	rm -rf $(VENV) $(DEMO_OUT) $(DEMO_OUT)-train .pytest_cache
