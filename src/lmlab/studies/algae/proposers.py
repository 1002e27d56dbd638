"""Who proposes features: a language model writing code, or a library (the non-LM ablation).

Every proposer receives a `ProposerInput` and nothing else: the task description, the state API,
the current features, the demonstrations as text, the contrast (a demonstration beside the
learned optimum, as text, or None) and the observable `Observations` (rooms and demonstrations).
The true reward, its feature names and its weights are never in it; `tests/.../test_leakage.py`
checks every string a run hands a proposer.

* `LMProposer` asks a chat model through `lmlab.llm` for feature code (n samples per call) and
  parses each answer into a `FeatureSpec`; every call is accounted and recorded for replay.
* `LibraryProposer` returns the library's features not yet in the set: the loop then keeps the
  one that most raises the demonstrations' likelihood. It is a **feature-selection ablation**
  (no language model), not ALGAE's proposer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from .features import LIBRARY, FeatureSpec
from .problem import Observations

SYSTEM = ("You are an expert Python programmer helping a robot learn what a person wants. "
          "You write small, pure Python feature functions.")


@dataclass(frozen=True)
class ProposerInput:
    """Everything a proposer may see."""

    task: str
    state_api: str
    features: tuple[FeatureSpec, ...]
    demos_text: str
    contrast: str | None
    observations: Observations = field(repr=False)

    def texts(self) -> list[str]:
        """Every string in this input (what the leakage test scans)."""
        out = [self.task, self.state_api, self.demos_text, self.contrast or ""]
        for f in self.features:
            out += [f.name, f.description, f.code]
        return out


class Proposer(Protocol):
    name: str
    uses_lm: bool

    def propose(self, inp: ProposerInput) -> list[FeatureSpec]: ...


@dataclass
class LibraryProposer:
    """Non-LM ablation: every library feature not yet in the set is a candidate."""

    name: str = "library"
    uses_lm: bool = False
    library: tuple[FeatureSpec, ...] = LIBRARY

    def propose(self, inp: ProposerInput) -> list[FeatureSpec]:
        have = {f.code for f in inp.features}
        return [f for f in self.library if f.code not in have]


def build_prompt(inp: ProposerInput) -> str:
    """The user message of a contrastive feature request."""
    feats = "\n".join(f"# {f.name}: {f.description}\n{f.code.strip()}"
                      for f in inp.features) or "(none)"
    contrast = inp.contrast or inp.demos_text
    return (
        f"{inp.task}\n\n{inp.state_api}\n\n"
        f"The reward currently uses these features:\n```python\n{feats}\n```\n\n"
        f"{contrast}\n\n"
        "What does the person care about that the current features miss? Write ONE new feature "
        "as a Python function `def feature(s):` that reads only the state dict `s` and returns "
        "a float. Do not import anything. Answer with a name line and one code block, like:\n"
        "# name: short_snake_case_name\n```python\ndef feature(s):\n    ...\n```"
    )


_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)
_NAME = re.compile(r"#\s*name\s*:\s*([A-Za-z_][A-Za-z0-9_ ]*)")
_DEF = re.compile(r"^def\s+([A-Za-z][A-Za-z0-9_]*)\s*\(", re.M)


def parse_feature(text: str, fallback_name: str) -> FeatureSpec | None:
    """The feature in a model's answer: the first code block defining a function (or the text
    from its first ``def``). A function not called ``feature`` is aliased to it. None if the
    answer holds no function."""
    blocks = [b for b in _BLOCK.findall(text) if _DEF.search(b)]
    if blocks:
        code = blocks[0]
    else:
        m = _DEF.search(text)
        if m is None:
            return None
        code = text[m.start():].split("```")[0]
    fn = _DEF.search(code)
    if fn is None:
        return None
    if fn.group(1) != "feature":
        code = code.rstrip() + f"\n\nfeature = {fn.group(1)}\n"
    m = _NAME.search(text)
    name = (m.group(1).strip().replace(" ", "_") if m else fn.group(1))[:40] or fallback_name
    return FeatureSpec(name=name, description=f"proposed by the language model ({name})",
                       code=code.strip() + "\n")


@dataclass
class LMProposer:
    """A chat model writing feature code; `samples` answers per call."""

    backend: Any  # an lmlab.llm Backend
    samples: int = 4
    temperature: float = 0.8
    max_tokens: int = 256
    seed: int = 0
    name: str = "lm"
    uses_lm: bool = True
    calls: int = 0
    log: list[dict] = field(default_factory=list)

    def propose(self, inp: ProposerInput) -> list[FeatureSpec]:
        from lmlab.llm import Request

        req = Request.chat(build_prompt(inp), system=SYSTEM, n=self.samples,
                           temperature=self.temperature, max_tokens=self.max_tokens,
                           seed=self.seed + self.calls)
        self.calls += 1
        completions = self.backend.generate([req])[0]
        out = []
        for j, c in enumerate(completions):
            spec = parse_feature(c.text, f"lm_feature_{self.calls}_{j}")
            self.log.append({"call": self.calls, "sample": j, "parsed": spec is not None,
                             "text": c.text})
            if spec is not None:
                out.append(spec)
        return out
