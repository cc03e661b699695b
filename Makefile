# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# GPU tests run only on a CUDA machine: `make test-gpu`.
PYTEST_ARGS ?= -n 2 -m "not gpu"

.PHONY: install test test-gpu conformance demo default-model bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps "vot-toolkit==0.9.0"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-gpu: install
	$(PY) -m pytest -m gpu

conformance: install
	$(PY) -m pytest -m conformance

# Tracks an embedded clip (generated on the fly) with the shipped default model, beside
# OpenCV CSRT and KCF; writes out/demo/tracked.mp4 and out/demo/boxes.txt.
demo: install
	$(VENV)/bin/mixformerv2 demo --out out/demo

# Re-train the default model from scratch: synthetic data, the mixformerv2-tiny recipe, its score
# head (mixformerv2-tiny-score), then the tracker policy the model card measured (hold_below 0.2).
default-model: install
	$(PY) -c "from mixformerv2.data.synthetic import write_got10k; write_got10k('data/synthetic/train', 400, seed=0, workers=2)"
	$(VENV)/bin/mixformerv2 train --recipe mixformerv2-tiny --data got10k=data/synthetic/train --out runs/default --resume
	$(VENV)/bin/mixformerv2 train --recipe mixformerv2-tiny-score --data got10k=data/synthetic/train --out runs/default-score --resume
	$(PY) -c "from mixformerv2.models.checkpoints import record_tracker_defaults; from mixformerv2.demo import DEFAULT_MODEL_POLICY; record_tracker_defaults('runs/default-score/model.safetensors', **DEFAULT_MODEL_POLICY)"

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
