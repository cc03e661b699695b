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

demo: install
	$(VENV)/bin/mixformerv2 demo

bench: install
	$(PY) benchmarks/speed.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
