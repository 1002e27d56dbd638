"""The study contract: registry, presets, typed overrides, claims."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.study import (
    CATALOG,
    Claim,
    StudyConfig,
    apply_overrides,
    catalog,
    get_study,
    implemented,
)

TEN = ["state-tracking", "peoplejoin", "ttt-arc", "intruders", "scaling-laws", "misinfo-eval",
       "linear-attention", "adaptive-compute", "random-transformers", "algae"]


def test_catalog_has_the_ten_studies_of_the_design():
    assert list(CATALOG)[:10] == TEN
    for info in CATALOG.values():
        assert info.title and info.authors and info.year >= 2024


def test_planned_study_is_not_runnable():
    for sid in TEN:
        if sid not in implemented():
            with pytest.raises(LmlabError, match="planned"):
                get_study(sid)


def test_unknown_study_suggests_a_near_name():
    with pytest.raises(LmlabError, match="did you mean 'scaling-laws'"):
        get_study("scaling-law")


def test_plugins_register_from_environment(toy_plugins):
    assert "toy-mean" in catalog()
    assert "toy-mean" in implemented()
    assert get_study("toy-mean").preset("tiny").n == 1000


def test_unknown_preset(toy_plugins):
    with pytest.raises(LmlabError, match=r"unknown preset 'huge'.*tiny, big"):
        get_study("toy-mean").preset("huge")


def test_overrides_are_typed(toy_plugins):
    base = get_study("toy-mean").preset("tiny")
    cfg = apply_overrides(base, ["n=10", "tolerance=1e-3", "label=hello=world", "mode=normal",
                                 "sizes=3,4,5", "scale=none", "verbose=true", "seed=7"])
    assert (cfg.n, cfg.tolerance, cfg.label, cfg.mode) == (10, 1e-3, "hello=world", "normal")
    assert cfg.sizes == (3, 4, 5) and cfg.scale is None and cfg.verbose is True and cfg.seed == 7
    assert apply_overrides(base, ["scale=2.5", "sizes=[1]"]).scale == 2.5
    assert base.n == 1000  # the preset itself is untouched


@pytest.mark.parametrize(
    "item, message",
    [
        ("nn=3", "unknown override key 'nn'; did you mean 'n'"),
        ("n=abc", "bad value 'abc' for n: expected an integer"),
        ("n=1.5", "expected an integer"),
        ("tolerance=x", "expected a number"),
        ("mode=cauchy", "expected one of uniform, normal"),
        ("verbose=maybe", "expected true or false"),
        ("sizes=a,b", "expected an integer"),
        ("novalue", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_problem(toy_plugins, item, message):
    with pytest.raises(LmlabError, match=message):
        apply_overrides(get_study("toy-mean").preset("tiny"), [item])


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integer_overrides_round_trip(n):
    from tests.plugins.toy_studies import MeanConfig

    assert apply_overrides(MeanConfig(), [f"n={n}"]).n == n


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_overrides_round_trip(x):
    from tests.plugins.toy_studies import MeanConfig

    assert apply_overrides(MeanConfig(), [f"tolerance={x!r}"]).tolerance == x


def test_claim_verdict_is_the_truth_value_of_the_measurement():
    assert Claim.check("a", "s", "p", 0.9, 0.9 > 0.5).holds is True
    assert Claim.check("a", "s", "p", 0.1, 0.1 > 0.5).holds is False
    assert Claim.check("a", "s", "p", None, None).holds is None
    d = Claim.untestable("a", "s", "p", "needs a GPU").to_dict()
    assert d == {"id": "a", "statement": "s", "paper": "p", "measured": "needs a GPU", "holds": None}



@dataclass(frozen=True)
class _Inner:
    steps: int = 10
    mode: Literal["a", "b"] = "a"


@dataclass
class _Outer(StudyConfig):
    inner: _Inner = field(default_factory=_Inner)
    lr: float = 0.1


def test_dotted_overrides_reach_nested_sub_configs() -> None:
    c = apply_overrides(_Outer(), ["inner.steps=200", "lr=0.5", "inner.mode=b"])
    assert c.inner == _Inner(200, "b") and c.lr == 0.5 and _Outer().inner.steps == 10
    for bad, words in [("inner.stpes=3", "did you mean 'inner.steps'"),
                       ("inner=3", "inner.steps"), ("lr.x=1", "has no fields"),
                       ("inner.mode=c", "expected one of a, b")]:
        with pytest.raises(LmlabError, match=words):
            apply_overrides(_Outer(), [bad])
