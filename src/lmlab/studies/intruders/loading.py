"""Weights to compare: models, checkpoints, safetensors files and PEFT LoRA adapters.

A weight *spec* is one of

- an embedded model name (``smollm2-135m-instruct``) or a Hugging Face hub id: the model's
  folder through `lmlab.models.model_path` (converted or downloaded once);
- a Hugging Face model folder (``model.safetensors``, sharded safetensors with an index, or
  ``pytorch_model.bin``);
- an lmlab run folder (its ``checkpoints/last.safetensors``, else its only checkpoint) or an
  lmlab checkpoint file, whose model tensors are stored as ``model/<key>``;
- a ``.safetensors`` file, or a ``.pt``/``.pth``/``.bin`` state dict (loaded with
  ``weights_only=True``: never unpickled).

A PEFT LoRA adapter folder (``adapter_config.json`` plus ``adapter_model.safetensors``) is merged
here, without PEFT: W = W0 + scaling * B A, with scaling = lora_alpha / r, or lora_alpha / sqrt(r)
under ``use_rslora``, per-module ranks and alphas from ``rank_pattern``/``alpha_pattern``, the
transpose for ``fan_in_fan_out`` and for embedding adapters, and ``modules_to_save`` copied over.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lmlab.errors import LmlabError

__all__ = [
    "LoraAdapter",
    "load_adapter",
    "load_pair",
    "load_weights",
    "merge_adapter",
    "read_state_file",
]

KeyFilter = Callable[[str], bool] | None
_PEFT_PREFIX = "base_model.model."
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")


def _keep(only: KeyFilter, key: str) -> bool:
    return only is None or only(key)


def _read_safetensors(path: Path, only: KeyFilter = None) -> dict[str, Tensor]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
            if any(k.startswith("model/") for k in keys):  # an lmlab trainer checkpoint
                return {k[6:]: f.get_tensor(k) for k in keys
                        if k.startswith("model/") and _keep(only, k[6:])}
            return {k: f.get_tensor(k) for k in keys if _keep(only, k)}
    except Exception as e:  # safetensors raises several types for damaged files
        raise LmlabError(f"{path}: cannot read safetensors ({type(e).__name__}: "
                         f"{' '.join(str(e).split())})") from None


def _read_torch(path: Path, only: KeyFilter = None) -> dict[str, Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle with code in it, or not a torch file at all
        raise LmlabError(f"{path}: not a loadable state dict ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:200]})") from None
    if isinstance(obj, Mapping):
        for key in _STATE_DICT_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not any(isinstance(v, Tensor) for v in obj.values()):
        raise LmlabError(f"{path}: holds no tensors by name (expected a state dict)")
    return {str(k): v for k, v in obj.items() if isinstance(v, Tensor) and _keep(only, str(k))}


def read_state_file(path: str | os.PathLike, only: KeyFilter = None) -> dict[str, Tensor]:
    """Tensors of one weights file: safetensors, or a torch state dict read with weights_only."""
    p = Path(path)
    if not p.is_file():
        raise LmlabError(f"{p}: file not found")
    if p.suffix == ".safetensors":
        return _read_safetensors(p, only)
    if p.suffix in (".bin", ".pt", ".pth"):
        return _read_torch(p, only)
    if p.suffix == ".gguf":
        raise LmlabError(f"{p} is a GGUF file: convert it to a Hugging Face folder first")
    raise LmlabError(f"{p}: unknown weights file type (use .safetensors, .pt, .pth or .bin)")


def _read_hf_folder(folder: Path, only: KeyFilter = None) -> dict[str, Tensor]:
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            try:
                shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError) as e:
                raise LmlabError(f"{folder / index}: malformed index ({e})") from None
            out: dict[str, Tensor] = {}
            for shard in shards:
                out.update(read_state_file(folder / shard, only))
            return out
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return read_state_file(folder / name, only)
    files = sorted(folder.glob("*.safetensors"))
    out = {}
    for f in files:
        out.update(read_state_file(f, only))
    return out


def _has_weight_files(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))


def _read_folder(folder: Path, only: KeyFilter = None) -> dict[str, Tensor]:
    if (folder / "adapter_config.json").is_file():
        raise LmlabError(
            f"{folder} is a PEFT adapter, not a model: pass it with --adapter, over its base"
        )
    ckpts = folder / "checkpoints"
    if ckpts.is_dir() and not (folder / "model.safetensors").is_file():
        files = sorted(ckpts.glob("*.safetensors"))
        last = ckpts / "last.safetensors"
        if last.is_file():
            return read_state_file(last, only)
        if len(files) == 1:
            return read_state_file(files[0], only)
        if not files:
            raise LmlabError(f"{folder}: an lmlab run folder with no checkpoint")
        raise LmlabError(
            f"{folder}: several checkpoints and no last.safetensors; pass one of "
            f"{', '.join(f.name for f in files[:5])}"
        )
    weights = _read_hf_folder(folder, only)
    if not weights and not _has_weight_files(folder):
        raise LmlabError(
            f"{folder} holds no weights (model.safetensors, sharded safetensors, "
            "pytorch_model.bin, or an lmlab run's checkpoints/)"
        )
    return weights


def load_weights(spec: str | os.PathLike, only: KeyFilter = None) -> dict[str, Tensor]:
    """Every tensor of the model `spec` names (see the module docstring), by state-dict key.

    `only` keeps the keys for which it returns True (the others are not read from safetensors).
    """
    from lmlab.models import EMBEDDED, hf, model_path

    s = os.fspath(spec)
    p = Path(s).expanduser()
    if p.is_file():
        weights = read_state_file(p, only)
    elif p.is_dir():
        weights = _read_folder(p, only)
    elif isinstance(spec, os.PathLike) or (
        s.strip().lower() not in EMBEDDED and hf.looks_like_path(s)
    ):
        raise LmlabError(f"{p}: no such file or folder")
    else:  # an embedded model name or a hub id
        weights = _read_folder(model_path(s), only)
    if any(".base_layer." in k or ".lora_A." in k for k in weights):
        raise LmlabError(
            f"{s} holds an unmerged PEFT model (base_layer / lora_A keys): merge it first "
            "(merge_and_unload) or save the adapter and pass it with --adapter"
        )
    return weights


# -- LoRA adapters --------------------------------------------------------------------------


@dataclass
class LoraAdapter:
    """A PEFT LoRA adapter as tensors: per module, A (r x in), B (out x r) and the scaling.

    Keys are the base model's weight keys (``model.layers.0.self_attn.q_proj.weight``). For
    embedding adapters and ``fan_in_fan_out`` layers the update is (B A)^T (`transposed`).
    """

    config: dict[str, Any]
    a: dict[str, Tensor]
    b: dict[str, Tensor]
    scaling: dict[str, float]
    transposed: dict[str, bool] = field(default_factory=dict)
    full: dict[str, Tensor] = field(default_factory=dict)  # modules_to_save, whole weights
    path: str = ""
    source: dict[str, str] = field(default_factory=dict)  # "a:KEY" / "b:KEY" / "full:KEY" -> file key

    def delta(self, key: str) -> Tensor:
        """The update scaling * B A (transposed where the layer stores it so), in float32+."""
        b, a = self.b[key], self.a[key]
        dtype = torch.promote_types(b.dtype, torch.float32)
        d = (b.to(dtype) @ a.to(dtype)) * self.scaling[key]
        return d.T if self.transposed.get(key) else d

    def rank(self, key: str) -> int:
        return int(self.a[key].shape[0])

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the adapter as PEFT does (adapter_config.json, adapter_model.safetensors).

        Tensors keep the names they were read under, so `PeftModel.from_pretrained` loads it.
        """
        from safetensors.torch import save_file

        from lmlab.runs import atomic_write_json

        out = Path(folder)
        tensors = {}
        for kind, store in (("a", self.a), ("b", self.b), ("full", self.full)):
            for key, t in store.items():
                name = self.source.get(f"{kind}:{key}")
                if name is None:
                    raise LmlabError(f"adapter tensor {kind}:{key} has no file name to save under")
                tensors[name] = t.detach().contiguous().cpu()
        out.mkdir(parents=True, exist_ok=True)
        save_file(tensors, out / "adapter_model.safetensors")
        atomic_write_json(out / "adapter_config.json", self.config)
        return out


def _pattern_value(patterns: Mapping[str, Any], module: str, default: Any) -> Any:
    """PEFT's rank_pattern / alpha_pattern lookup: a key matches a module name's dotted tail."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def load_adapter(path: str | os.PathLike) -> LoraAdapter:
    """Read a PEFT LoRA adapter folder (its config and weights) into a `LoraAdapter`."""
    folder = Path(path).expanduser()
    cfg_path = folder / "adapter_config.json"
    if not cfg_path.is_file():
        raise LmlabError(f"{folder}: not a PEFT adapter folder (no adapter_config.json)")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LmlabError(f"{cfg_path}: not valid JSON ({e})") from None
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise LmlabError(f"{folder}: a {config.get('peft_type')} adapter; only LoRA is supported")
    if config.get("use_dora"):
        raise LmlabError(f"{folder}: a DoRA adapter; its merge is not W0 + scaling * B A")
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        if (folder / name).is_file():
            tensors = read_state_file(folder / name)
            break
    else:
        raise LmlabError(f"{folder}: no adapter_model.safetensors or adapter_model.bin")
    r0, alpha0 = int(config.get("r", 8)), float(config.get("lora_alpha", 8))
    rslora = bool(config.get("use_rslora", False))
    fan_in_fan_out = bool(config.get("fan_in_fan_out", False))
    a: dict[str, Tensor] = {}
    b: dict[str, Tensor] = {}
    emb: set[str] = set()
    full: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    lora = re.compile(r"^(.*)\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B)(?:\.[^.]+)?"
                      r"(?:\.weight)?$")
    for key, t in tensors.items():
        k = key.removeprefix(_PEFT_PREFIX)
        m = lora.match(k)
        if m is None:
            if "lora_magnitude_vector" in k:
                raise LmlabError(f"{folder}: a DoRA adapter; its merge is not W0 + scaling * B A")
            fkey = re.sub(r"\.modules_to_save\.[^.]+", "", k)
            full[fkey], source[f"full:{fkey}"] = t, key
            continue
        module, part = m.group(1), m.group(2)
        wkey = module + ".weight"
        side = "a" if part.endswith("A") else "b"
        (a if side == "a" else b)[wkey] = t
        source[f"{side}:{wkey}"] = key
        if "embedding" in part:
            emb.add(wkey)
    missing = sorted(set(a) ^ set(b))
    if missing:
        raise LmlabError(f"{folder}: lora_A without lora_B (or the reverse) for {missing[:3]}")
    scaling, transposed = {}, {}
    for wkey in a:
        module = wkey[: -len(".weight")]
        r = int(_pattern_value(config.get("rank_pattern") or {}, module, r0))
        alpha = float(_pattern_value(config.get("alpha_pattern") or {}, module, alpha0))
        if a[wkey].shape[0] != r:
            raise LmlabError(f"{folder}: {module} has rank {a[wkey].shape[0]} but the config "
                             f"says r={r}")
        scaling[wkey] = alpha / (math.sqrt(r) if rslora else r)
        transposed[wkey] = wkey in emb or fan_in_fan_out
    return LoraAdapter(config, a, b, scaling, transposed, full, str(folder), source)


def _resolve(key: str, base: Mapping[str, Tensor]) -> str | None:
    """The base key an adapter key refers to: itself, or the one key sharing its dotted tail."""
    if key in base:
        return key
    hits = [k for k in base if k.endswith("." + key) or key.endswith("." + k)]
    return hits[0] if len(hits) == 1 else None


def merge_adapter(base: Mapping[str, Tensor], adapter: LoraAdapter) -> dict[str, Tensor]:
    """The tuned weights: a copy of `base` with every adapted matrix W0 + scaling * B A."""
    merged = dict(base)
    problems = []
    for key in adapter.a:
        bk = _resolve(key, base)
        if bk is None:
            problems.append(f"{key}: not in the base")
            continue
        d = adapter.delta(key)
        if tuple(d.shape) != tuple(base[bk].shape):
            problems.append(f"{key}: update {tuple(d.shape)} vs base {tuple(base[bk].shape)}")
            continue
        w0 = base[bk]
        merged[bk] = (w0.to(d.dtype) + d).to(w0.dtype)
    for key, t in adapter.full.items():
        bk = _resolve(key, base)
        if bk is not None and tuple(t.shape) == tuple(base[bk].shape):
            merged[bk] = t
    if problems:
        more = f"; ... ({len(problems) - 4} more)" if len(problems) > 4 else ""
        raise LmlabError(
            f"adapter {adapter.path or ''} does not fit the base: {len(problems)} of "
            f"{len(adapter.a)} adapted matrices: {'; '.join(problems[:4])}{more}"
        )
    return merged


def load_pair(
    base: str | os.PathLike,
    tuned: str | os.PathLike | None = None,
    adapter: str | os.PathLike | None = None,
    only: KeyFilter = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Base and tuned weights from specs: `tuned`, or `base` plus the `adapter`, or both.

    With `tuned` and `adapter` both given, the adapter is merged into `tuned` (a LoRA trained on
    top of an already fine-tuned model, compared with the original base).
    """
    if tuned is None and adapter is None:
        raise LmlabError("give the tuned model, or an adapter (--adapter) over the base")
    w0 = load_weights(base, only)
    wt = w0 if tuned is None else load_weights(tuned, only)
    if adapter is not None:
        lora = load_adapter(adapter)
        if only is not None:  # the matrices not read from the base are not merged either
            keep = [key for key in lora.a if only(key)]
            lora = replace(lora, a={key: lora.a[key] for key in keep},
                           b={key: lora.b[key] for key in keep},
                           full={key: t for key, t in lora.full.items() if only(key)})
        wt = merge_adapter(wt, lora)
    return w0, wt
