"""The study contract and the registry of studies.

Every study is one package under `lmlab.studies` exposing `STUDY`, an instance of `Study`:

- `presets`: named, typed configurations (dataclasses deriving from `StudyConfig`); `tiny` runs on
  a 2-core CPU in minutes and is what `lmlab reproduce` runs; `paper` is the paper's setting.
- `run(config, run) -> dict`: does the work, streams metrics into the run folder, returns metrics.
- `claims(config, metrics) -> list[Claim]`: the paper's headline statements, each evaluated from
  the measured metrics. The verdict is computed here, never stored as a constant.

`execute` in `lmlab.runner` ties these together and writes `result.json`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from lmlab.errors import LmlabError

if TYPE_CHECKING:
    from lmlab.runs import Run


@dataclass
class StudyConfig:
    """Base of every preset: fields every study has. Subclasses add their own (all with defaults)."""

    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class Claim:
    """One headline statement of a paper and what this run measured of it.

    `holds` is True or False when the preset tests the claim and None when it cannot; it must be
    computed from the measurement (see `Claim.check`).
    """

    id: str
    statement: str
    paper: str
    measured: float | int | str | None
    holds: bool | None

    @classmethod
    def check(
        cls, id: str, statement: str, paper: str, measured: Any, verdict: Any
    ) -> Claim:
        """Build a claim whose verdict is the truth value of `verdict` (None: not testable here)."""
        holds = None if verdict is None else bool(verdict)
        return cls(id=id, statement=statement, paper=paper, measured=measured, holds=holds)

    @classmethod
    def untestable(cls, id: str, statement: str, paper: str, why: str) -> Claim:
        """A claim this preset cannot test; `why` says what it would take."""
        return cls(id=id, statement=statement, paper=paper, measured=why, holds=None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Check(Claim):
    """An invariant, identity or precondition of this implementation (not a paper's finding).

    Same fields and constructors as `Claim`; `result.json` lists checks apart from claims and the
    headline "N of M claims hold" counts claims only.
    """


class Study:
    """Base class of a study. Subclasses set the class attributes and implement run and claims."""

    id: ClassVar[str]
    Config: ClassVar[type[StudyConfig]]
    presets: ClassVar[dict[str, StudyConfig]]
    # Optional: the study's own command line: a typer.Typer of verbs (`lmlab STUDY VERB ...`), or
    # one typer-annotated function mounted as the command `lmlab STUDY ARGS...` itself.
    cli: Any = None
    # Optional: speed benchmarks `lmlab bench NAME` runs, name -> function returning a dict.
    benchmarks: ClassVar[dict[str, Callable[..., dict[str, Any]]]] = {}
    # Optional: expected wall seconds of a preset on a quiet 2-core machine, e.g. {"tiny": 240};
    # `lmlab reproduce` runs the fastest studies first (a recorded result's time wins).
    expected_s: ClassVar[dict[str, float]] = {}
    # Optional: top-level config fields that `--resume` may change, growing the run (e.g.
    # ("n_seeds",): more models). The finished jobs are kept, so the study's job cache keys must
    # not depend on these fields (`executor.JobCache.key`); the result is computed anew.
    growable: ClassVar[tuple[str, ...]] = ()

    def run(self, config: StudyConfig, run: Run) -> dict[str, Any]:
        """Do the work in the run folder `run` (a `lmlab.runs.Run`: the one interface a study
        receives; a job that needs a scratch folder makes a real `Run` there); return the
        metrics."""
        raise NotImplementedError

    def claims(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Claim]:
        """Evaluate the paper's claims from the measured metrics."""
        raise NotImplementedError

    def checks(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Check]:
        """Evaluate this implementation's invariants and preconditions (default: none)."""
        return []

    def validate(self, config: StudyConfig) -> None:
        """Raise `LmlabError` (one line naming the field) for a configuration that cannot run.

        Called before anything is written to disk. The default checks `Literal` fields against
        their allowed values; studies extend it with their own combinations.
        """
        validate_literals(config)

    # -- presets and overrides ------------------------------------------------------------------
    def preset(self, name: str) -> StudyConfig:
        """A fresh copy of preset `name`."""
        if name not in self.presets:
            raise LmlabError(
                f"unknown preset {name!r} for study {self.id!r}; presets: {', '.join(self.presets)}"
            )
        return dataclasses.replace(self.presets[name])


@dataclass(frozen=True)
class StudyInfo:
    """A study of the catalog: where its code lives and what paper it reimplements."""

    id: str
    title: str
    authors: str
    year: int
    summary: str
    module: str | None = None  # python module defining STUDY; None for a plugin registered directly

    def load(self) -> Study | None:
        """The study's implementation, or None when it is planned but not implemented yet."""
        if self.id in _PLUGINS:
            return _PLUGINS[self.id]
        if self.module is None:
            return None
        try:
            mod = importlib.import_module(self.module)
        except ModuleNotFoundError as e:
            if e.name and self.module.startswith(e.name):
                return None  # the study's package does not exist yet: planned
            raise
        return getattr(mod, "STUDY", None)

    @property
    def implemented(self) -> bool:
        return self.load() is not None


def _info(id: str, title: str, authors: str, year: int, summary: str) -> StudyInfo:
    return StudyInfo(id, title, authors, year, summary, f"lmlab.studies.{id.replace('-', '_')}")


CATALOG: dict[str, StudyInfo] = {
    s.id: s
    for s in [
        _info("state-tracking", "(How) Do Language Models Track State?", "Li, Guo, Andreas", 2025,
              "compose permutations (S3, S5); probe and patch; associative vs parity-associative scan"),
        _info("peoplejoin", "PeopleJoin: Benchmarking LM-Mediated Collaborative Problem Solving",
              "Jhamtani, Andreas, Van Durme", 2025,
              "agents that find and message teammates in an organization and compile answers"),
        _info("ttt-arc", "The Surprising Effectiveness of Test-Time Training for Abstract Reasoning",
              "Akyürek et al.", 2024,
              "ARC tasks, leave-one-out TTT data, per-task LoRA, augmented inference, voting"),
        _info("intruders", "LoRA vs Full Fine-tuning: An Illusion of Equivalence",
              "Shuttleworth, Andreas, Torralba, Sharma", 2024,
              "intruder dimensions in LoRA-tuned weights; forgetting; mitigation"),
        _info("scaling-laws", "A Hitchhiker's Guide to Scaling Law Estimation",
              "Choshen, Zhang, Andreas", 2024,
              "fit scaling laws to checkpoint losses; the paper's evaluation protocol"),
        _info("misinfo-eval", "MisinfoEval: Generative AI in the Era of Alternative Facts",
              "Gabriel et al.", 2024,
              "LLM-generated misinformation interventions, personalized explanations, a mock feed"),
        _info("linear-attention", "Learning Linear Attention in Polynomial Time", "Yau et al.", 2024,
              "multi-head linear attention learned exactly by least squares; identifiability"),
        _info("adaptive-compute", "Learning How Hard to Think: Input-Adaptive Allocation of LM Computation",
              "Damani et al.", 2024,
              "predict reward as a function of budget; adaptive best-of-k; routing"),
        _info("random-transformers", "Algorithmic Capabilities of Random Transformers",
              "Zhong, Andreas", 2024,
              "train only the embeddings of random transformers on algorithmic tasks"),
        _info("algae", "Adaptive Language-Guided Abstraction from Contrastive Explanations",
              "Peng et al.", 2024,
              "LM-proposed features plus max-entropy IRL; missing features; few-shot rewards"),
    ]
}

_PLUGINS: dict[str, Study] = {}
_plugins_loaded = False


def register(study: Study, info: StudyInfo | None = None) -> None:
    """Register a study defined outside lmlab (a user's own, or a test's).

    Modules named in the environment variable LMLAB_PLUGINS (comma-separated) are imported on
    first use of the registry, so a plugin can call `register` at import time.
    """
    _PLUGINS[study.id] = study
    if study.id not in CATALOG:
        CATALOG[study.id] = info or StudyInfo(study.id, study.id, "", 0, "plugin study")


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name in filter(None, (m.strip() for m in os.environ.get("LMLAB_PLUGINS", "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise LmlabError(f"LMLAB_PLUGINS: cannot import {name!r} ({e})") from None


def catalog() -> dict[str, StudyInfo]:
    """Every known study (the ten of the design plus registered plugins), by id."""
    _load_plugins()
    return CATALOG


def get_study(study_id: str) -> Study:
    """The implementation of `study_id`; a clear error if unknown or only planned."""
    cat = catalog()
    if study_id not in cat:
        import difflib

        near = difflib.get_close_matches(study_id, list(cat), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f"; studies: {', '.join(cat)}"
        raise LmlabError(f"unknown study {study_id!r}{hint}")
    study = cat[study_id].load()
    if study is None:
        raise LmlabError(f"study {study_id!r} is planned but not implemented yet")
    return study


def implemented() -> list[str]:
    """Ids of the studies that have an implementation."""
    return [sid for sid, info in catalog().items() if info.implemented]


# -- overrides ---------------------------------------------------------------------------------
def _parse_value(raw: str, tp: Any, key: str) -> Any:
    """Parse the string `raw` as type `tp`, with a one-line error naming the key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and raw.lower() in ("none", "null"):
            return None
        errors = []
        for a in (a for a in args if a is not type(None)):
            try:
                return _parse_value(raw, a, key)
            except LmlabError as e:
                errors.append(str(e))
        raise LmlabError(errors[0] if errors else f"bad value {raw!r} for {key}")
    if origin is Literal:
        for a in args:
            if str(a) == raw:
                return a
        raise LmlabError(f"bad value {raw!r} for {key}: expected one of {', '.join(map(str, args))}")
    if tp is bool:
        low = raw.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise LmlabError(f"bad value {raw!r} for {key}: expected true or false")
    if tp is int:
        try:
            return int(raw.replace("_", ""))
        except ValueError:
            try:
                f = float(raw)
            except ValueError:
                f = None
            if f is not None and f.is_integer():
                return int(f)
            raise LmlabError(f"bad value {raw!r} for {key}: expected an integer") from None
    if tp is float:
        try:
            return float(raw)
        except ValueError:
            raise LmlabError(f"bad value {raw!r} for {key}: expected a number") from None
    if tp is str:
        return raw
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        text = raw.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise LmlabError(f"bad value {raw!r} for {key}: not a JSON list") from None
            items = [str(i) for i in items]
        else:
            items = [s.strip() for s in text.split(",") if s.strip()]
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(items) != len(args):
                raise LmlabError(f"bad value {raw!r} for {key}: expected {len(args)} items")
            return tuple(_parse_value(i, a, key) for i, a in zip(items, args, strict=True))
        elem = args[0] if args else str
        parsed = [_parse_value(i, elem, key) for i in items]
        return tuple(parsed) if origin is tuple or tp is tuple else parsed
    raise LmlabError(f"cannot override {key}: unsupported field type {tp!r}")


def apply_overrides(config: StudyConfig, overrides: Sequence[str]) -> StudyConfig:
    """Return a copy of `config` with `key=value` overrides applied, each checked against its type.

    A dotted key reaches into a nested sub-config: `--set pretrain.steps=200`.
    """
    for item in overrides:
        if "=" not in item:
            raise LmlabError(f"bad override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        config = _override(config, key.strip().split("."), raw.strip(), "")
    return config


def _override(config: Any, path: list[str], raw: str, prefix: str) -> Any:
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    key = path[0]
    if key not in names:
        import difflib

        near = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean {prefix + near[0]!r}?" if near else f"; keys: {', '.join(names)}"
        raise LmlabError(f"unknown override key {prefix + key!r}{hint}")
    current = getattr(config, key)
    if len(path) > 1:
        if not (dataclasses.is_dataclass(current) and not isinstance(current, type)):
            raise LmlabError(f"cannot override {prefix + '.'.join(path)}: {prefix + key} has no fields")
        value = _override(current, path[1:], raw, f"{prefix}{key}.")
    elif dataclasses.is_dataclass(current) and not isinstance(current, type):
        fields = ", ".join(f"{prefix}{key}.{f.name}" for f in dataclasses.fields(current))
        raise LmlabError(f"{prefix + key} is a group of settings; set one of {fields}")
    else:
        value = _parse_value(raw, hints[key], prefix + key)
    return dataclasses.replace(config, **{key: value})


def _literal_choices(tp: Any) -> tuple[Any, ...] | None:
    """The allowed values of `Literal[...]` or `Literal[...] | None` (None for other types)."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for a in typing.get_args(tp):
            if typing.get_origin(a) is Literal:
                return (*typing.get_args(a), None) if type(None) in typing.get_args(tp) else \
                    typing.get_args(a)
    return None


def validate_literals(config: Any, prefix: str = "") -> None:
    """Check every `Literal[...]` field of a (nested) config dataclass against its allowed values,
    and every item of a `tuple[Literal[...], ...]` / `list[Literal[...]]` field."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        tp = hints.get(f.name)
        name = f"{prefix}{f.name}"
        choices = _literal_choices(tp)
        if choices is not None and value not in choices:
            allowed = ", ".join(map(str, choices))
            raise LmlabError(f"bad value {value!r} for {name}: expected one of {allowed}")
        if typing.get_origin(tp) in (tuple, list) and isinstance(value, tuple | list):
            args = [a for a in typing.get_args(tp) if a is not Ellipsis]
            items = _literal_choices(args[0]) if len(args) == 1 else None
            for item in value if items is not None else ():
                if item not in items:
                    allowed = ", ".join(map(str, items))
                    raise LmlabError(
                        f"bad value {item!r} in {name}: expected items from {allowed}")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate_literals(value, f"{name}.")


def config_to_dict(config: StudyConfig) -> dict[str, Any]:
    """The configuration as plain JSON values."""
    return dataclasses.asdict(config)


__all__ = [
    "CATALOG",
    "Check",
    "Claim",
    "Study",
    "StudyConfig",
    "StudyInfo",
    "apply_overrides",
    "catalog",
    "config_to_dict",
    "get_study",
    "implemented",
    "register",
    "validate_literals",
]
