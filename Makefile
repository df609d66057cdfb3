# The README's two commands: `make demo` and `make test`. Each installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo
BUNDLE ?= pix2pix_ngf

.PHONY: install demo test lint format bench package verify-zoo test-label clean

install: $(STAMP)

# torch is pinned to the CPU build first: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,dose]"
	touch $(STAMP)

demo: install
	$(PY) scripts/demo.py --bundle $(BUNDLE) --out $(DEMO_DIR)

# two workers, one thread each: most tests are start-up and small tensors, which one thread does as fast as two
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal tests

lint: install
	$(PY) -m ruff check custom tests scripts
	$(PY) -m black --check --line-length 120 custom tests scripts

format: install
	$(PY) -m ruff check --fix custom tests scripts
	$(PY) -m black --line-length 120 custom tests scripts

bench: install
	$(PY) scripts/bench.py --bundle $(BUNDLE) $(ARGS)

# one self-contained zip per bundle in dist/; MODEL=path/to/model.pt BUNDLE=name: that bundle with trained weights
package: install
	$(PY) scripts/package.py $(if $(MODEL),--bundle $(BUNDLE) --model $(MODEL))

# the model zoo's ci/verify_bundle.py (full mode) on each packaged bundle with a trained model; not part of `make test`:
# ZOO=path to a model-zoo checkout (or a bare git mirror); BUNDLES="a b" to choose; WORK=folder to keep (and reuse)
verify-zoo: install
	@test -n "$(ZOO)" || (echo "usage: make verify-zoo ZOO=/path/to/model-zoo [BUNDLES=...] [WORK=...]" && false)
	$(PY) scripts/verify_zoo.py --zoo $(ZOO) $(foreach b,$(BUNDLES),--bundle $(b)) $(if $(WORK),--work $(WORK))

# a real MONAI Label server (its own venv: monailabel 0.8.5 needs numpy < 2 and pydicom < 3, and torchvision) serves a
# packaged bundle with a trained demo model; not part of `make test`. BUNDLE=a NIfTI bundle; WORK=folder to keep
LABEL_VENV := .venv-label
$(LABEL_VENV)/.installed:
	test -x $(LABEL_VENV)/bin/python || $(PYTHON) -m venv $(LABEL_VENV)
	$(LABEL_VENV)/bin/pip install --quiet "monailabel==0.8.5" "numpy<2" "pydicom<3" torch==2.14.1 torchvision==0.29.1
	touch $@

test-label: install $(LABEL_VENV)/.installed
	$(PY) scripts/test_label.py --label-python $(LABEL_VENV)/bin/python --bundle $(BUNDLE) $(if $(WORK),--work $(WORK))

clean:
	rm -rf $(VENV) $(DEMO_DIR) dist .pytest_cache
