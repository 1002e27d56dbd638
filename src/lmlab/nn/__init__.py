"""Small transformers and their tools: the GPT with hook points, freezing modes, hooks.

The trainer lives in `lmlab.nn.train` and is imported from there (it is not loaded here, so
`import lmlab.nn` stays light).
"""

from lmlab.nn.gpt import FREEZE_MODES, GPT, GPTConfig, GPTConfigError
from lmlab.nn.hooks import HookedMixin, HookNameError, HookPoint, run_with_cache, run_with_hooks
from lmlab.nn.modes import evaluating

__all__ = [
    "FREEZE_MODES",
    "GPT",
    "GPTConfig",
    "GPTConfigError",
    "HookNameError",
    "HookPoint",
    "HookedMixin",
    "evaluating",
    "run_with_cache",
    "run_with_hooks",
]
