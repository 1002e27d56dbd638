"""Choosing the device: the same code runs on a laptop CPU and on a GPU."""

from __future__ import annotations

import torch

from lmlab.errors import LmlabError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU; an unavailable explicit device is an error.

    A `torch.device` passes through the same availability check. This is the one device resolver:
    studies call it (or `device_name`) rather than wrapping it.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise LmlabError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LmlabError(f"device {name!r} requested but CUDA is not available")
    return dev


def device_name(name: str | torch.device = "auto") -> str:
    """`resolve_device(name)` as a string ("cpu", "cuda", ...), for job specs that are pickled."""
    return str(resolve_device(name))


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's first parameter (or buffer) lives; CPU for a model with neither."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")
