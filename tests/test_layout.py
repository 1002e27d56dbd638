"""Every study has the one layout (docs/adding-a-study.md), checked on every registered study.

    src/lmlab/studies/<pkg>/
        __init__.py   docstring + `from .study import STUDY`
        config.py     the config dataclass (a StudyConfig) and PRESETS (a dict with "tiny")
        study.py      the Study subclass and STUDY: orchestration only
        claims.py     claims(config, metrics) -> list[Claim], checks(config, metrics) -> list[Check]
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest

from lmlab.study import Check, Claim, Study, StudyConfig, catalog


def _studies() -> list[str]:
    """The registered studies that live in lmlab.studies (plugins keep their own shape)."""
    return [sid for sid, info in catalog().items()
            if info.module and info.module.startswith("lmlab.studies.") and info.implemented]


def test_the_six_studies_are_walked() -> None:
    assert {"state-tracking", "ttt-arc", "intruders", "scaling-laws", "linear-attention",
            "random-transformers"} <= set(_studies())


@pytest.mark.parametrize("study_id", _studies())
def test_study_has_the_one_layout(study_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg_name = catalog()[study_id].module
    assert pkg_name is not None
    pkg = importlib.import_module(pkg_name)
    folder = Path(pkg.__file__).parent
    for name in ("__init__.py", "config.py", "study.py", "claims.py"):
        assert (folder / name).is_file(), f"{study_id}: missing {name}"
    assert (pkg.__doc__ or "").strip(), f"{study_id}: __init__.py needs a docstring (the paper)"

    config = importlib.import_module(f"{pkg_name}.config")
    study_mod = importlib.import_module(f"{pkg_name}.study")
    claims_mod = importlib.import_module(f"{pkg_name}.claims")

    # study.py: the Study subclass and its one instance, exported by the package
    study = study_mod.STUDY
    assert pkg.STUDY is study and isinstance(study, Study)
    assert type(study).__module__ == study_mod.__name__
    assert study.id == study_id

    # config.py: the config dataclass and PRESETS
    assert study.Config.__module__ == config.__name__, f"{study_id}: Config must live in config.py"
    assert issubclass(study.Config, StudyConfig) and dataclasses.is_dataclass(study.Config)
    for f in dataclasses.fields(study.Config):  # every field has a default (--set needs that)
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    assert isinstance(config.PRESETS, dict) and "tiny" in config.PRESETS
    assert study.presets is config.PRESETS, f"{study_id}: presets must be config.PRESETS"
    assert all(isinstance(p, study.Config) for p in config.PRESETS.values())

    # claims.py: claims(config, metrics) and checks(config, metrics), and the study delegates
    for fn_name in ("claims", "checks"):
        fn = getattr(claims_mod, fn_name, None)
        assert inspect.isfunction(fn), f"{study_id}: claims.py needs a function {fn_name}()"
        params = list(inspect.signature(fn).parameters)
        assert len(params) == 2, f"{study_id}: {fn_name}{inspect.signature(fn)} takes (config, metrics)"

    sentinel_claim = Claim.check("layout", "s", "p", 1, True)
    sentinel_check = Check.check("layout", "s", "p", 1, True)
    seen: list[Any] = []

    def fake_claims(c: Any, m: Any) -> list[Claim]:
        seen.append(("claims", c, m))
        return [sentinel_claim]

    def fake_checks(c: Any, m: Any) -> list[Check]:
        seen.append(("checks", c, m))
        return [sentinel_check]

    for mod in (claims_mod, study_mod):
        if hasattr(mod, "claims"):
            monkeypatch.setattr(mod, "claims", fake_claims)
        if hasattr(mod, "checks"):
            monkeypatch.setattr(mod, "checks", fake_checks)
    cfg, metrics = study.preset("tiny"), {"x": 1.0}
    assert study.claims(cfg, metrics) == [sentinel_claim], f"{study_id}: claims() must delegate"
    assert study.checks(cfg, metrics) == [sentinel_check], f"{study_id}: checks() must delegate"
    assert seen == [("claims", cfg, metrics), ("checks", cfg, metrics)]
