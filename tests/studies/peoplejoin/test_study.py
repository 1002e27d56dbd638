"""The study end to end on the synthetic organization (a fake model only for plumbing)."""

from __future__ import annotations

import json

import pytest

from lmlab.errors import LmlabError
from lmlab.runner import execute

from .fakes import FakeLM
from .test_agents import fake_agent_brain


def _brain(request):
    text = request.messages[-1]["content"]
    system = request.messages[0]["content"]
    if "You grade an AI assistant" in system:
        return "score: 2" if "4 books" in text else "score: 0"
    if "working for one of your colleagues" in system:
        return "Bob: I have two books: Dune and Emma." if "(user id: bob)" in system else "skip"
    return fake_agent_brain(request)


@pytest.fixture
def fake_models(monkeypatch):
    import lmlab.llm

    made = {}

    def get_backend(spec, **kw):
        made.setdefault(spec, FakeLM(_brain, model=spec))
        return made[spec]

    monkeypatch.setattr(lmlab.llm, "get_backend", get_backend)
    return made


def test_run_end_to_end(data_root, tmp_path, fake_models, capsys):
    out = tmp_path / "run"
    res = execute("peoplejoin", "tiny", [f"data={data_root}", "organizations=bookshop", "items=0",
                                         "agents=reactive,message-none,message-all,oracle-contacts,broadcast,none",
                                         "agent_model=hf:a", "teammate_model=hf:b", "n_boot=200", "executor=serial",
                                         "teammates=llm"], out=out)
    m = res["metrics"]
    assert m["items"] == 5 and m["gold.reproduced"] == 4 and m["gold.answerable"] == 4
    assert m["check.rescore_equal"] == 1.0 and m["check.oracle.min_precision"] == 1.0
    assert m["model.agent"] == "hf:a" and m["model.teammates"] == "hf:b" and m["model.judge"] == "hf:a"
    assert set(fake_models) == {"hf:a", "hf:b"}
    for a in ("reactive", "message-none", "oracle-contacts"):
        assert 0 <= m[f"match.{a}.mean"] <= 100 and m[f"exec.{a}.ci_lo"] <= m[f"exec.{a}.mean"]
    assert m["recall.broadcast.mean"] == 1.0
    ids = {c["id"]: c for c in res["claims"]}
    assert {"reactive_beats_none.match", "message_all_recall_precision", "hard_items.exec"} <= set(ids)
    checks = {c["id"]: c for c in res["checks"]}
    assert checks["oracle_people"]["holds"] is True and checks["rescore"]["holds"] is True
    assert (out / "figures" / "peoplejoin.png").is_file() and (out / "efficiency.md").is_file()
    assert len(list((out / "transcripts").glob("*/*.json"))) == 30
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == 30
    assert 0 <= m["judge.agree_exec"] <= 1 and "judge_agrees_exec" in checks
    assert len(list((out / "llm_records").glob("*/*.jsonl"))) >= 5  # one record file per episode
    # another judge on the saved transcripts: its agreement with the execution check, beside ours
    from lmlab.studies.peoplejoin.cli import judge

    capsys.readouterr()
    judge(str(out), judge="hf:c", data="", limit=0)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["judge"] for x in lines] == ["hf:c", "hf:a"] and lines[0]["transcripts"] == 30
    assert lines[0]["agree_exec"] == lines[1]["agree_exec"]  # the same fake judge


def test_bad_config_fails_before_the_disk(data_root, tmp_path):
    out = tmp_path / "bad"
    with pytest.raises(LmlabError, match="unknown agent"):
        execute("peoplejoin", "tiny", [f"data={data_root}", "agents=reactive,genius"], out=out)
    with pytest.raises(LmlabError, match="unknown LLM backend"):
        execute("peoplejoin", "tiny", [f"data={data_root}", "agent_model=gpt:4"], out=out)
    with pytest.raises(LmlabError, match=r"expected a folder holding dev\.jsonl"):
        execute("peoplejoin", "tiny", [f"data={tmp_path / 'nowhere'}"], out=out)
    with pytest.raises(LmlabError, match="no items left"):
        execute("peoplejoin", "tiny", [f"data={data_root}", "organizations=pets_1"], out=out)
    assert not out.exists()
