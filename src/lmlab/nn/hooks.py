"""Named hook points: read or edit any activation of a model by its name.

A `HookPoint` is an identity module placed where an activation matters. Its name is its path in
the model (`blocks.0.attn.hook_pattern`), so a probe or a patch written against one model works on
every model that uses the same names (TransformerLens's vocabulary). The helpers here work on any
`nn.Module` that contains HookPoints::

    logits, cache = run_with_cache(model, idx, names_filter=lambda n: "resid" in n)
    logits = run_with_hooks(model, idx, fwd_hooks=[("blocks.1.hook_resid_post", zero)])

A hook function receives `(tensor, hook)` and returns a replacement tensor, or None to leave the
activation as it is. Hooks are always removed when the call ends, also when it raises.
Models that subclass `HookedMixin` get the same helpers as methods.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from lmlab.errors import LmlabError

__all__ = [
    "HookFn",
    "HookNameError",
    "HookPoint",
    "HookedMixin",
    "NamesFilter",
    "hook_points",
    "hooks",
    "run_with_cache",
    "run_with_hooks",
]

HookFn = Callable[[Tensor, "HookPoint"], Tensor | None]
# None (every hook point), one name, a list of names, or a predicate on names.
NamesFilter = str | Sequence[str] | Callable[[str], bool] | None
# A hook is attached by exact name or to every hook point whose name passes a predicate.
FwdHooks = Sequence[tuple[str | Callable[[str], bool], HookFn]]


class HookNameError(LmlabError, ValueError):
    """A hook name that the model does not have; the message lists the closest names."""


class HookPoint(nn.Module):
    """Identity module marking an activation; hooks attached to it may read or replace it."""

    def __init__(self) -> None:
        super().__init__()
        self.name: str | None = None  # set by hook_points() to the path inside the root model

    def forward(self, x: Tensor) -> Tensor:
        return x

    @property
    def has_hooks(self) -> bool:
        """True when some hook is attached, so the model must produce this activation for real."""
        return bool(self._forward_hooks)

    def add_hook(self, fn: HookFn) -> torch.utils.hooks.RemovableHandle:
        """Attach `fn(tensor, hook) -> tensor | None`; returns a handle whose remove() detaches it."""

        def forward_hook(module: nn.Module, inputs: Any, output: Tensor) -> Tensor | None:
            return fn(output, self)

        return self.register_forward_hook(forward_hook)

    def extra_repr(self) -> str:
        return repr(self.name) if self.name is not None else ""


def hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """Every HookPoint of `model` by its path, in definition order; also sets each one's name."""
    points: dict[str, HookPoint] = {}
    for name, module in model.named_modules():
        if isinstance(module, HookPoint):
            module.name = name
            points[name] = module
    return points


def _unknown(name: str, known: Sequence[str]) -> HookNameError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    if close:
        hint = "did you mean " + ", ".join(close) + "?"
    elif known:
        shown = ", ".join(list(known)[:8]) + (", ..." if len(known) > 8 else "")
        hint = f"the model has {len(known)} hook points: {shown}"
    else:
        hint = "the model has no hook points"
    return HookNameError(f"unknown hook point {name!r}; {hint}")


def _select(points: dict[str, HookPoint], names_filter: NamesFilter) -> list[str]:
    """Names of the hook points chosen by `names_filter`; an unknown exact name is an error."""
    if names_filter is None:
        return list(points)
    if callable(names_filter):
        return [n for n in points if names_filter(n)]
    wanted = [names_filter] if isinstance(names_filter, str) else list(names_filter)
    for name in wanted:
        if name not in points:
            raise _unknown(name, list(points))
    return wanted


@contextmanager
def hooks(model: nn.Module, fwd_hooks: FwdHooks) -> Iterator[nn.Module]:
    """Attach `fwd_hooks` [(name or predicate, fn), ...] for the duration of a `with` block."""
    points = hook_points(model)
    # Resolve every name before attaching anything, so a typo leaves the model untouched.
    plan: list[tuple[HookPoint, HookFn]] = []
    for name, fn in fwd_hooks:
        for n in _select(points, name):
            plan.append((points[n], fn))
    handles = []
    try:
        for point, fn in plan:
            handles.append(point.add_hook(fn))
        yield model
    finally:
        for handle in handles:
            handle.remove()


def run_with_hooks(model: nn.Module, *args: Any, fwd_hooks: FwdHooks = (), **kwargs: Any) -> Any:
    """Call `model(*args, **kwargs)` with `fwd_hooks` attached; returns the model's output."""
    with hooks(model, fwd_hooks):
        return model(*args, **kwargs)


def run_with_cache(
    model: nn.Module,
    *args: Any,
    names_filter: NamesFilter = None,
    detach: bool = True,
    **kwargs: Any,
) -> tuple[Any, dict[str, Tensor]]:
    """Call the model and record the activations at the chosen hook points.

    Returns (model output, cache) where cache maps hook name -> tensor, in the order the forward
    pass produced them. `detach=False` keeps the tensors in the autograd graph (for gradients
    with respect to an activation).
    """
    names = _select(hook_points(model), names_filter)
    cache: dict[str, Tensor] = {}

    def save(tensor: Tensor, hook: HookPoint) -> None:
        assert hook.name is not None
        cache[hook.name] = tensor.detach() if detach else tensor

    out = run_with_hooks(model, *args, fwd_hooks=[(n, save) for n in names], **kwargs)
    return out, cache


class HookedMixin:
    """Gives an nn.Module `hook_points`, `hooks`, `run_with_cache` and `run_with_hooks` methods.

    Both run methods return logits: the model's output if it is a tensor, otherwise its first
    element (a `(logits, loss)` tuple) or its `.logits` attribute. Override `_logits_of` to change.
    """

    def hook_points(self) -> dict[str, HookPoint]:
        """Every HookPoint of the model by name."""
        assert isinstance(self, nn.Module)
        return hook_points(self)

    def hooks(self, fwd_hooks: FwdHooks) -> Any:
        """Context manager attaching `fwd_hooks` while the block runs."""
        assert isinstance(self, nn.Module)
        return hooks(self, fwd_hooks)

    def run_with_cache(
        self, *args: Any, names_filter: NamesFilter = None, detach: bool = True, **kwargs: Any
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Run the model; return (logits, cache of hook name -> activation)."""
        assert isinstance(self, nn.Module)
        out, cache = run_with_cache(self, *args, names_filter=names_filter, detach=detach, **kwargs)
        return self._logits_of(out), cache

    def run_with_hooks(self, *args: Any, fwd_hooks: FwdHooks = (), **kwargs: Any) -> Tensor:
        """Run the model with `fwd_hooks` [(name, fn(tensor, hook) -> tensor | None)]; return logits."""
        assert isinstance(self, nn.Module)
        return self._logits_of(run_with_hooks(self, *args, fwd_hooks=fwd_hooks, **kwargs))

    @staticmethod
    def _logits_of(output: Any) -> Tensor:
        if isinstance(output, Tensor):
            return output
        if isinstance(output, tuple):
            return output[0]
        return output.logits
