"""Hugging Face models: local model folders and hub ids, loaded through `transformers`.

A *model folder* is what ``save_pretrained`` writes: a ``config.json``, the weights
(``model.safetensors``, sharded safetensors with an index, or ``pytorch_model.bin``) and usually
the tokenizer files. Hub ids (``HuggingFaceTB/SmolLM2-135M``) go to `transformers`, which
downloads them or reads its local cache; with no network, and the model not cached, loading fails
with one line saying so and asking for a local folder.

Every failure a user can cause ends in one `LmlabError` line: a missing folder, a folder that is
not a model, a weights file passed in place of a folder, an unreachable hub, a missing
`transformers` (`MissingDependency`, extra ``hf``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from lmlab.errors import LmlabError, require

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "spiece.model",
)
# owner/name or a bare legacy name (gpt2): letters, digits, '-', '_', '.'; no '..' segments.
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
_DTYPES: dict[str, torch.dtype | str] = {
    "auto": "auto",
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


def _one_line(msg: str) -> str:
    """Collapse a (library) message into one line."""
    return " ".join(str(msg).split())


def transformers_module() -> Any:
    """Import `transformers`, or raise `MissingDependency` naming the ``hf`` extra."""
    return require("transformers", extra="hf")


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | str:
    """A torch dtype from a dtype or a name (``float32``, ``bf16``, ``auto``, ...)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise LmlabError(f"unknown dtype {dtype!r}; use one of {', '.join(sorted(_DTYPES))}")
    return _DTYPES[key]


def looks_like_path(spec: str) -> bool:
    """Whether `spec` is meant as a local path rather than a hub id."""
    return (
        spec.startswith(("/", ".", "~"))
        or "\\" in spec
        or spec.count("/") > 1
        or not _HUB_ID.match(spec)
        or spec.endswith((".safetensors", ".bin", ".pt", ".pth", ".gguf", ".json"))
    )


def is_model_folder(path: str | os.PathLike) -> bool:
    """Whether `path` is a folder holding a Hugging Face ``config.json`` and weights."""
    p = Path(path)
    return p.is_dir() and (p / "config.json").is_file() and _has_weights(p)


def _has_weights(folder: Path) -> bool:
    return any((folder / f).is_file() for f in WEIGHT_FILES) or any(folder.glob("*.safetensors"))


def has_tokenizer(path: str | os.PathLike) -> bool:
    """Whether the folder holds tokenizer files."""
    p = Path(path)
    return any((p / f).is_file() for f in TOKENIZER_FILES)


def check_model_folder(path: str | os.PathLike) -> Path:
    """Return `path` resolved if it is a model folder; otherwise raise a one-line `LmlabError`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise LmlabError(f"model folder not found: {p}")
    if p.is_file():
        if p.suffix == ".safetensors":
            raise LmlabError(
                f"{p} is a weights file, not a model: pass the folder that holds it together "
                "with its config.json (and tokenizer files)"
            )
        if p.suffix == ".gguf":
            raise LmlabError(
                f"{p} is a GGUF file: load it with transformers "
                "(from_pretrained(folder, gguf_file=name)) and save_pretrained it to a folder"
            )
        raise LmlabError(f"{p} is a file, not a Hugging Face model folder")
    if not (p / "config.json").is_file():
        raise LmlabError(f"{p} is not a Hugging Face model folder (it has no config.json)")
    if not _has_weights(p):
        raise LmlabError(
            f"{p} has a config.json but no weights (model.safetensors, sharded safetensors "
            "or pytorch_model.bin)"
        )
    return p.resolve()


def _place(model: Any, device: str | torch.device) -> Any:
    """Move `model` to `device`, with a one-line error for a device that is not there."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise LmlabError(f"unknown device {device!r}: {_one_line(str(e))}") from None
    try:
        model = model.to(dev)
    except (RuntimeError, AssertionError) as e:
        raise LmlabError(f"cannot move the model to {dev}: {_one_line(str(e))}") from None
    model.eval()
    return model


def load_folder(
    path: str | os.PathLike,
    *,
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
    with_tokenizer: bool = True,
) -> tuple[Any, Any]:
    """Load a causal LM (and its tokenizer) from a local Hugging Face model folder.

    Returns ``(model, tokenizer)``, the model in eval mode on `device`; the tokenizer is None
    when `with_tokenizer` is False. Never touches the network.
    """
    folder = check_model_folder(path)
    transformers = transformers_module()
    torch_dtype = resolve_dtype(dtype)
    tokenizer = None
    if with_tokenizer:
        if not has_tokenizer(folder):
            raise LmlabError(
                f"{folder} has no tokenizer files (tokenizer.json, tokenizer_config.json, ...); "
                "add them, or load the weights alone with with_tokenizer=False"
            )
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LmlabError(f"cannot load the tokenizer in {folder}: {_one_line(str(e))}") from None
    try:
        with quiet_progress(transformers):  # a "Loading weights" bar per worker floods piped logs
            model = transformers.AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch_dtype, local_files_only=True
            )
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise LmlabError(
            f"cannot load a causal language model from {folder}: {_one_line(str(e))}"
        ) from None
    return _place(model, device), tokenizer


def _hub_error(spec: str, e: BaseException) -> LmlabError:
    """Translate a transformers / huggingface_hub failure for hub id `spec` into one line."""
    msg = _one_line(str(e))
    low = msg.lower()
    name = type(e).__name__
    if (
        "connect" in low
        or "offline" in low
        or "LocalEntryNotFound" in name
        or "OfflineModeIsEnabled" in name
    ):
        return LmlabError(
            f"cannot load {spec!r}: it is not a local folder, the Hugging Face hub is unreachable "
            "(offline) and the model is not in the local hub cache; pass a local model folder, "
            "or 'smollm2-135m-instruct' for the embedded model"
        )
    if "not a valid model identifier" in low or "RepositoryNotFound" in name or "404" in low:
        return LmlabError(
            f"{spec!r} is neither a local model folder nor a model on the Hugging Face hub"
        )
    return LmlabError(f"cannot load {spec!r} from the Hugging Face hub: {msg}")


def load_hub(
    repo_id: str,
    *,
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
    with_tokenizer: bool = True,
    revision: str | None = None,
) -> tuple[Any, Any]:
    """Load a causal LM (and its tokenizer) by hub id, from the hub or the local hub cache."""
    transformers = transformers_module()
    torch_dtype = resolve_dtype(dtype)
    try:
        tokenizer = (
            transformers.AutoTokenizer.from_pretrained(repo_id, revision=revision)
            if with_tokenizer
            else None
        )
        model = transformers.AutoModelForCausalLM.from_pretrained(
            repo_id, dtype=torch_dtype, revision=revision
        )
    except (OSError, ValueError) as e:
        raise _hub_error(repo_id, e) from None
    return _place(model, device), tokenizer


def hub_folder(repo_id: str, *, revision: str | None = None) -> Path:
    """A local folder with the hub model `repo_id` (config, weights, tokenizer), downloaded once."""
    transformers_module()
    hub = require("huggingface_hub", extra="hf")
    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
    try:
        folder = Path(hub.snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
        if not _has_weights(folder):  # an older repository with pickled weights only
            folder = Path(
                hub.snapshot_download(
                    repo_id, revision=revision, allow_patterns=[*patterns, "pytorch_model*.bin"]
                )
            )
    except (OSError, ValueError) as e:
        raise _hub_error(repo_id, e) from None
    return check_model_folder(folder)


def load_hf(
    spec: str | os.PathLike,
    *,
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device = "cpu",
    with_tokenizer: bool = True,
) -> tuple[Any, Any]:
    """Load a local model folder or, when `spec` is no existing path and looks like one, a hub id."""
    s = os.fspath(spec)
    if isinstance(spec, os.PathLike) or Path(s).expanduser().exists() or looks_like_path(s):
        return load_folder(s, dtype=dtype, device=device, with_tokenizer=with_tokenizer)
    return load_hub(s, dtype=dtype, device=device, with_tokenizer=with_tokenizer)


def hf_model_path(spec: str | os.PathLike) -> Path:
    """The local model folder for a folder path or a hub id (downloading the hub model once)."""
    s = os.fspath(spec)
    if isinstance(spec, os.PathLike) or Path(s).expanduser().exists() or looks_like_path(s):
        return check_model_folder(s)
    return hub_folder(s)


@contextlib.contextmanager
def quiet_progress(transformers: Any) -> Iterator[None]:
    """Hide transformers' progress bars for the duration (lmlab's own progress says what runs)."""
    tlog = transformers.utils.logging
    was_enabled = tlog.is_progress_bar_enabled()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            tlog.enable_progress_bar()
