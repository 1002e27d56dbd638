"""The study's plumbing end to end with a scripted model, its validation, CLI verbs, downloader."""

from __future__ import annotations

import dataclasses
import urllib.error

import pytest
from tests.plugins.scripted_replies import reply
from typer.testing import CliRunner

import lmlab.llm
from lmlab.errors import LmlabError
from lmlab.llm.replay import Recorder
from lmlab.runs import Run
from lmlab.studies.misinfo_eval import STUDY
from lmlab.studies.misinfo_eval import release as R
from lmlab.studies.misinfo_eval.cli import app
from lmlab.studies.misinfo_eval.data import read_responses
from lmlab.studies.misinfo_eval.simulate import parse_answer, parse_choice
from lmlab.studies.misinfo_eval.web import load_site


def persona_reply(req, i):
    """Scripted (tests/plugins/scripted_replies.py): explanations are one sentence; a persona
    trusts the note's label, else says 'reliable'; it prefers note B."""
    return reply(req)


@pytest.fixture
def tiny_run(tmp_path, monkeypatch, scripted):
    def fake_backend(spec, *, run=None, record=None, **kw):
        lm = Recorder(scripted(persona_reply), record)
        return lm.attach(run) if run is not None else lm

    monkeypatch.setattr(lmlab.llm, "get_backend", fake_backend)
    cfg = dataclasses.replace(STUDY.preset("tiny"), n_feeds=2, participants_per_condition=4,
                              n_boot=200)
    STUDY.validate(cfg)
    run = Run(tmp_path / "run")
    return cfg, run, STUDY.run(cfg, run)


def test_run_writes_a_servable_folder_and_scored_simulation(tiny_run):
    cfg, run, m = tiny_run
    assert m["mrf.status"].startswith("skipped:")
    site = load_site(run.path / "feeds", seed=cfg.seed)
    assert site.conditions == ("control", "label", "generic-human", "generic-ai", "llm",
                               "personalized")
    assert all(m[f"filled.{c}"] == 1.0 for c in site.conditions if c != "control")
    rows = read_responses(run.path / "responses.csv")
    assert len(rows) == 6 * 4 * 5
    assert {r["source"] for r in rows} == {"simulated:fake:scripted"}
    # the scripted persona trusts the label: perfect with one, the base rate without
    assert m["sim.accuracy.label.mean"] == 1.0
    assert m["sim.accuracy.control.mean"] == pytest.approx(
        sum(r["gold"] for r in rows if r["condition"] == "control") / 20)
    assert (run.path / "annotation_sheet.csv").is_file()
    assert (run.path / "figures" / "simulated_accuracy.png").is_file()
    # the calls are recorded: the run replays offline from its own record
    assert lmlab.llm.describe_sources(run.path / "llm_record.jsonl")["fake:scripted"]["requests"] > 0


def test_claims_and_checks_are_computed_from_the_run(tiny_run):
    cfg, _, m = tiny_run
    claims = {c.id: c for c in STUDY.claims(cfg, m)}
    assert claims["label_bearing_beats_control"].holds is True
    assert claims["llm_beats_label"].holds is False  # both 1.0: the interval is [0, 0]
    assert claims["annotation_stats"].holds is None
    assert all("simulated participants" in c.statement for k, c in claims.items()
               if k != "annotation_stats")
    pref = m["sim.preference.personalized.mean"]
    assert 0.0 <= pref <= 1.0
    checks = {c.id: c for c in STUDY.checks(cfg, m)}
    assert checks["every_post_filled"].holds and checks["mrf_clean"].holds
    assert checks["generic_explanations_valid"].holds


def test_annotation_claim_holds_only_on_the_paper_numbers():
    m = {"annotation.status": "ok", "annotation.kept": 373,
         **{f"annotation.{k}.percent": v for k, v in
            {"inaccurate": 24.129, "opinion": 1.072, "commonsense": 99.732, "events": 79.088,
             "domain": 95.979}.items()}}
    claim = next(c for c in STUDY.claims(STUDY.preset("tiny"), m) if c.id == "annotation_stats")
    assert claim.holds is True
    m["annotation.opinion.percent"] = 1.34
    claim = next(c for c in STUDY.claims(STUDY.preset("tiny"), m) if c.id == "annotation_stats")
    assert claim.holds is False


@pytest.mark.parametrize("change,msg", [
    ({"conditions": ("control", "placebo")}, "placebo"),
    ({"groups": ("liberal_white",)}, "5 fields"),
    ({"feeds": "file", "feeds_file": "/nowhere.csv"}, "feeds_file"),
    ({"feeds": "release"}, "release_dir"),
    ({"conditions": ("label", "llm")}, "control"),
    ({"llm": "nonsense:x"}, "unknown LLM backend"),
])
def test_impossible_configurations_fail_before_the_disk(change, msg):
    with pytest.raises(LmlabError, match=msg):
        STUDY.validate(dataclasses.replace(STUDY.preset("tiny"), **change))


def test_answer_parsing():
    assert parse_answer("Reliable.") is True
    assert parse_answer("unreliable") is False
    assert parse_answer("It is not reliable") is False
    assert parse_answer("Hmm, hard to say") is None
    assert parse_choice("B.") == "B" and parse_choice("Note A") == "A" and parse_choice("?") is None


def test_cli_verbs(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["feeds", "--out", str(tmp_path / "f"), "--n-feeds", "2"])
    assert r.exit_code == 0, r.output
    assert load_site(tmp_path / "f").conditions == ("control", "label", "generic-human",
                                                    "generic-ai")
    r = runner.invoke(app, ["export", "--db", str(tmp_path / "none.db")])
    assert isinstance(r.exception, LmlabError) and "not found" in str(r.exception)


def test_downloader_checks_sums_and_says_what_it_needs_offline(tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    with pytest.raises(LmlabError, match="needs internet access"):
        R.download(tmp_path, opener=offline)

    class Fake:
        def __init__(self, data):
            self.data = data

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def read(self):
            return self.data

    with pytest.raises(LmlabError, match="checksum mismatch"):
        R.download(tmp_path, opener=lambda url, timeout: Fake(b"not the release"))
    assert not list(tmp_path.iterdir())  # nothing saved
    assert R.COMMIT in R.url(R.FEEDS_FILE) and len(R.COMMIT) == 40


def test_score_and_annotation_verbs_read_files(tmp_path):
    from lmlab.studies.misinfo_eval.annotation import SHEET_COLUMNS
    from lmlab.studies.misinfo_eval.data import RESPONSE_COLUMNS, write_csv

    rows = []
    for c, right in (("control", 1), ("label", 4)):
        for k in range(3):
            for pos in range(5):
                ok = pos < right
                rows.append({**dict.fromkeys(RESPONSE_COLUMNS, ""), "participant_id": f"{c}{k}",
                             "condition": c, "post_id": f"f/{pos}", "gold": 1,
                             "response": int(ok), "position": pos})
    write_csv(tmp_path / "r.csv", RESPONSE_COLUMNS, rows)
    r = CliRunner().invoke(app, ["score", str(tmp_path / "r.csv")])
    assert r.exit_code == 0, r.output
    assert "control: accuracy 0.200" in r.output and "label: accuracy 0.800" in r.output
    assert "gain +0.600 (+300.0%)" in r.output
    write_csv(tmp_path / "a.csv", SHEET_COLUMNS, [
        {**dict.fromkeys(SHEET_COLUMNS, "No"), "image": "x", SHEET_COLUMNS[5]: "Yes"},
        {**dict.fromkeys(SHEET_COLUMNS, "No"), "image": "x"}])
    r = CliRunner().invoke(app, ["annotation-stats", str(tmp_path / "a.csv")])
    assert r.exit_code == 0 and "2 of 2 rows kept" in r.output and "inaccurate: 50.00% (1)" in r.output


def test_kill_and_resume_gives_the_uninterrupted_metrics(tmp_path):
    """The real `lmlab run` killed after its first recorded LLM call, then --resume: the record
    is the resume point (its calls are replayed, the rest made), and metrics and verdicts equal
    an uninterrupted run's (so the same seed also gives the same numbers). The model is a
    scripted, slow stand-in (tests/plugins/scripted_llm.py): plumbing, not results."""
    import re

    from tests.study_runs import TIMING, assert_kill_resume_matches

    args = ["--preset", "tiny", "--set", "llm=replay:scripted", "--set", "n_feeds=1",
            "--set", "participants_per_condition=2", "--set", "n_boot=200", "--set", "batch=8"]
    # how many answers came from the record is bookkeeping, not a result
    ignore = re.compile(f"{TIMING.pattern}|^llm\\.replayed$")
    full = assert_kill_resume_matches(tmp_path, "misinfo-eval", args, marker="llm_record.jsonl",
                                      ignore=ignore, LMLAB_PLUGINS="tests.plugins.scripted_llm")
    assert full["metrics"]["sim.model"] == "fake:scripted"
    assert (tmp_path / "killed" / "llm_record.jsonl").is_file()
