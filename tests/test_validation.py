"""Bad configurations fail before the disk: one line, exit code 2, no run folder.

Every registered study is exercised through the real `lmlab` entry point, and every preset of
every study is type-checked field by field against its annotation (nested configs too).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest

from lmlab.errors import LmlabError
from lmlab.study import get_study, implemented, validate_literals

SIX = ["state-tracking", "ttt-arc", "intruders", "scaling-laws", "linear-attention",
       "random-transformers"]

# One value per study that only that study can reject (an unknown condition, an impossible
# combination, a malformed spec), and the words its one-line error must contain.
STUDY_SPECIFIC = {
    "state-tracking": (["conditions=none,bogus"], "conditions"),
    "ttt-arc": (["ttt.transforms=rot90,spin"], "ttt.transforms"),
    "intruders": (["mitigation.method=alpha2r:x"], "mitigation.method"),
    "scaling-laws": (["variants=bogus"], "variant"),
    "linear-attention": (["dfa.width=65"], "dfa.width"),
    "random-transformers": (["tasks=modadd,sorting"], "tasks"),
}


def _assert_refused(r: Any, root: Path, *words: str) -> None:
    assert r.code == 2, (r.code, r.out, r.err)
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (root / "runs").exists() and not (root / "out").exists()


@pytest.mark.parametrize("study", SIX)
def test_unknown_executor_is_one_line_and_no_folder(cli, tmp_path, monkeypatch, study):
    monkeypatch.chdir(tmp_path)
    r = cli("run", study, "--set", "executor=nope")  # default folder: runs/STUDY/...
    _assert_refused(r, tmp_path, "executor", "serial, process, ray")
    r = cli("run", study, "--set", "executor=nope", "--out", "out")
    _assert_refused(r, tmp_path, "executor")


@pytest.mark.parametrize("study", SIX)
def test_a_study_specific_bad_value_is_one_line_and_no_folder(cli, tmp_path, monkeypatch, study):
    monkeypatch.chdir(tmp_path)
    overrides, word = STUDY_SPECIFIC[study]
    args = [a for o in overrides for a in ("--set", o)]
    _assert_refused(cli("run", study, *args), tmp_path, word)


def _replace_path(config: Any, path: list[str], value: Any) -> Any:
    """`dataclasses.replace` through nested sub-configs (`grid.modes`)."""
    if len(path) == 1:
        return dataclasses.replace(config, **{path[0]: value})
    inner = _replace_path(getattr(config, path[0]), path[1:], value)
    return dataclasses.replace(config, **{path[0]: inner})


def test_validate_catches_what_overrides_cannot_see() -> None:
    """A preset edited in code (not through --set) is still checked by Study.validate."""
    cases = {
        "state-tracking": ("conditions", ("none", "bogus")),
        "ttt-arc": ("dtype", "float8"),
        "intruders": ("schemes", ("alpha2r", "lora-xl")),
        "random-transformers": ("grid.modes", ("random", "frozen")),
    }
    for sid, (key, value) in cases.items():
        study = get_study(sid)
        bad = _replace_path(study.preset("tiny"), key.split("."), value)
        with pytest.raises(LmlabError, match=key.replace(".", r"\.")):
            study.validate(bad)
    st = get_study("state-tracking")
    with pytest.raises(LmlabError, match="eval_len"):
        st.validate(dataclasses.replace(st.preset("tiny"), eval_len=3))


@dataclasses.dataclass
class Inner:
    mode: Literal["a", "b"] = "a"


@dataclasses.dataclass
class Outer:
    modes: tuple[Literal["x", "y"], ...] = ("x",)
    maybe: Literal["p", "q"] | None = None
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_literal_items_of_tuples_are_checked() -> None:
    validate_literals(Outer())
    with pytest.raises(LmlabError, match=r"'z' in modes: expected items from x, y"):
        validate_literals(Outer(modes=("x", "z")))
    with pytest.raises(LmlabError, match=r"inner\.mode"):
        validate_literals(Outer(inner=Inner(mode="c")))  # type: ignore[arg-type]
    with pytest.raises(LmlabError, match="maybe"):
        validate_literals(Outer(maybe="r"))  # type: ignore[arg-type]


def test_choice_literals_match_the_code_they_choose_in() -> None:
    """A Literal of choices must list exactly what the code accepts."""
    from lmlab.executor import BACKENDS
    from lmlab.nn.gpt import POS_SCHEMES
    from lmlab.studies.intruders.config import Task
    from lmlab.studies.intruders.data import TASKS
    from lmlab.studies.random_transformers.config import Mode
    from lmlab.studies.random_transformers.experiments import MODES
    from lmlab.studies.state_tracking.config import ModelSpec, StateTrackingConfig
    from lmlab.studies.state_tracking.groups import GROUPS
    from lmlab.studies.state_tracking.steering import INTERMEDIATE_TASKS

    assert BACKENDS == ("serial", "process", "ray")
    assert set(typing.get_args(Task)) == set(TASKS)
    assert set(typing.get_args(Mode)) == set(MODES) - {"lstm"}
    hints = typing.get_type_hints(StateTrackingConfig)
    assert set(typing.get_args(hints["group"])) == set(GROUPS)
    assert set(typing.get_args(typing.get_type_hints(ModelSpec)["pos"])) == set(POS_SCHEMES)
    assert set(typing.get_args(typing.get_args(hints["conditions"])[0])) == set(INTERMEDIATE_TASKS)


# -- every preset, type-checked ------------------------------------------------------------------
def _type_errors(value: Any, tp: Any, name: str) -> list[str]:
    """Where `value` does not conform to the annotation `tp` (empty: it does)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return []
    if origin is Literal:
        return [] if value in args else [f"{name}={value!r} not in {args}"]
    if origin in (typing.Union, types.UnionType):
        for a in args:
            if not _type_errors(value, a, name):
                return []
        return [f"{name}={value!r} is none of {args}"]
    if tp is type(None):
        return [] if value is None else [f"{name}={value!r} is not None"]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{name}={value!r} is not a bool"]
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{name}={value!r} is not an int"]
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{name}={value!r} is not a number"]
    if tp is str:
        return [] if isinstance(value, str) else [f"{name}={value!r} is not a str"]
    if origin in (tuple, list):
        if not isinstance(value, origin):
            return [f"{name}={value!r} is not a {origin.__name__}"]
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                return [f"{name}={value!r} needs {len(args)} items"]
            pairs = list(zip(value, args, strict=True))
        else:
            pairs = [(v, args[0] if args else Any) for v in value]
        return [e for i, (v, a) in enumerate(pairs) for e in _type_errors(v, a, f"{name}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{name}={value!r} is not a dict"]
        return [e for k, v in value.items() for e in _type_errors(v, args[1], f"{name}[{k!r}]")]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, tp):
            return [f"{name}={value!r} is not a {tp.__name__}"]
        return _config_errors(value, f"{name}.")
    if isinstance(tp, type):
        return [] if isinstance(value, tp) else [f"{name}={value!r} is not a {tp.__name__}"]
    return [f"{name}: unsupported annotation {tp!r}"]


def _config_errors(config: Any, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(type(config))
    return [e for f in dataclasses.fields(config)
            for e in _type_errors(getattr(config, f.name), hints[f.name], f"{prefix}{f.name}")]


def test_the_type_checker_itself_finds_errors() -> None:
    assert _type_errors(("a", 3), tuple[str, ...], "x") == ["x[1]=3 is not a str"]
    assert _type_errors(True, int, "n") and _type_errors("c", Literal["a", "b"], "m")
    assert not _type_errors(None, float | None, "f") and not _type_errors(2, float, "f")


@pytest.mark.parametrize("study_id", implemented())
def test_every_preset_conforms_to_its_config_type(study_id: str) -> None:
    study = get_study(study_id)
    assert study.presets, f"{study_id} has no presets"
    for name, preset in study.presets.items():
        assert isinstance(preset, study.Config), (study_id, name)
        errors = _config_errors(preset)
        assert not errors, f"{study_id} preset {name!r}: {errors}"
        # and every preset passes its own study's validation; a preset beyond `tiny` may need what
        # an offline machine lacks (released test data to download first), and then says so
        try:
            study.validate(preset)
        except LmlabError as e:
            assert name != "tiny" and "download" in str(e) and "\n" not in str(e), (study_id, name, e)
