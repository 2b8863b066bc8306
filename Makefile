# make demo  : set everything up and run the main retrieval demo on its defaults
# make test  : set up and run the default (fast) tests
# make test-slow : the tests marked slow or compile (C++ builds; minutes)
# make test-nvcc : compiles a CUDA project with nvcc (minutes; CI runs it after make test)
# make test-gpu  : cpp_standalone against cuda_standalone on an NVIDIA GPU
# make docs      : the documentation site into docs/_build/html (warnings are errors; CI runs it)
# make gpu-wheels: .whl/ = the wheels a GPU machine lacks + astrogate's own (docs/gpu_session.md)

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# python3.12 on PATH first, then pyenv's 3.12 (the pyenv shim fails unless 3.12 is selected)
PYTHON312 := $(shell \
  if python3.12 -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then echo python3.12; \
  elif command -v pyenv >/dev/null 2>&1 && ls -d "$$(pyenv root)"/versions/3.12* >/dev/null 2>&1; then \
    ls -d "$$(pyenv root)"/versions/3.12*/bin/python3.12 | sort -V | tail -n 1; \
  fi)

.PHONY: demo test test-slow test-nvcc test-gpu docs gpu-wheels venv clean

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  if [ -z "$(PYTHON312)" ]; then \
	    echo "error: Python 3.12 is required (brian2 2.10.1 needs it) but neither python3.12 nor pyenv's 3.12 was found." >&2; \
	    echo "       install it (for example: pyenv install 3.12) and run make again." >&2; exit 1; \
	  fi; \
	  echo "creating $(VENV) with $(PYTHON312)"; \
	  $(PYTHON312) -m venv $(VENV); \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,cuda,docs]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/astrogate demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m 'slow or compile'

test-nvcc: $(STAMP)
	$(PY) -m pytest -q -m nvcc

test-gpu: $(STAMP)
	$(PY) -m pytest -q -m cuda

docs: $(STAMP)
	$(PY) -m sphinx -b html -W --keep-going -q docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

gpu-wheels: $(STAMP)
	$(PY) .ci/gpu_wheels.py

clean:
	rm -rf $(VENV) runs/demo .pytest_cache build *.egg-info docs/_build docs/examples docs/api/modules
