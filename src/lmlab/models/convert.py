"""Turn a GGUF file into a plain Hugging Face safetensors folder (float32), once per model.

Every catalog model goes through this recipe (`lmlab.models.embedded.EmbeddedModel` calls it under
its file lock, into a temporary folder that is renamed into place).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

from lmlab.errors import require
from lmlab.models.hf import quiet_progress, transformers_module


def convert(gguf: Path, out: Path, name: str) -> None:
    """De-quantize `gguf` into a Hugging Face safetensors folder `out` (float32).

    `save_pretrained` refuses a GGUF-loaded model, so the weights move into a fresh model built
    from the same configuration minus its ``quantization_config``. `name` becomes the config's
    ``name_or_path``. The GGUF reader unties the output layer when the file holds its own
    ``output.weight`` (Qwen2.5-Coder-0.5B), and `tie_weights` then leaves it untied.
    """
    transformers = transformers_module()
    require("gguf", extra="hf")
    folder, file = str(gguf.parent), gguf.name
    with quiet_progress(transformers):
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=file)
        loaded = transformers.AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=file, dtype=torch.float32
        )
        config = copy.deepcopy(loaded.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = name
        fresh = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        fresh.load_state_dict(loaded.state_dict())
        fresh.tie_weights()
        fresh.generation_config = copy.deepcopy(loaded.generation_config)
        fresh.save_pretrained(out)
        tokenizer.save_pretrained(out)


def notice(message: str) -> None:
    """One line on stderr (through rich, without markup or wrapping)."""
    try:
        from rich.console import Console

        Console(stderr=True, highlight=False, markup=False, soft_wrap=True).print(message)
    except ImportError:  # pragma: no cover - rich is a core dependency
        print(message, file=sys.stderr)
