# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch; a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# GPU tests run only on a CUDA machine: `make test-gpu`.
PYTEST_ARGS ?= -n 2 -m "not gpu"

.PHONY: install test test-gpu conformance demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-gpu: install
	$(PY) -m pytest -m gpu

conformance: install
	$(PY) -m pytest -m conformance

# The embedded default model arrives with the training work (issue 3); until then the demo
# needs a checkpoint: make demo WEIGHTS=mixformerv2_small.pth.tar BOX=x,y,w,h VIDEO=clip.mp4
WEIGHTS ?=
VIDEO ?= ../shared/data/videos/box.mp4
BOX ?= 295,15,300,225
demo: install
	@if [ -z "$(WEIGHTS)" ]; then \
	  echo "make demo: no default model ships yet; pass WEIGHTS=<official .pth.tar or .safetensors>"; exit 2; fi
	$(VENV)/bin/mixformerv2 track "$(VIDEO)" --box "$(BOX)" --weights "$(WEIGHTS)" \
	  --save-video out/demo.mp4 --save-boxes out/demo.txt --overwrite

bench: install
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
