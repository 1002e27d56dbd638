"""Progress you can see: one line per finished job when piped, a bar on a terminal, nothing when
turned off; `lmlab reproduce` says which study of how many and keeps a running claims count."""

from __future__ import annotations

import re

import pytest

from lmlab.executor import map_jobs
from lmlab.progress import job_progress, mode, step_progress
from lmlab.runs import Run


def _square(x: int) -> dict[str, int]:
    return {"key": f"x={x}", "value": x * x}


def test_piped_output_is_one_line_per_job(capsys, monkeypatch) -> None:
    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    monkeypatch.setattr("lmlab.progress.LINE_GAP_S", 0.0)
    seen = []
    out = map_jobs(_square, [1, 2, 3], "serial", lambda i, r: seen.append(i), progress="toy: jobs")
    assert [r["value"] for r in out] == [1, 4, 9] and seen == [0, 1, 2]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"toy: jobs \[1/3 jobs\] x=1 \(elapsed \d+:\d\d, eta \d+:\d\d\)", lines[0])
    assert lines[2].startswith("toy: jobs [3/3 jobs] x=3") and "eta 0:00" in lines[2]


def test_quick_jobs_piped_print_the_first_the_last_and_one_line_per_gap(capsys, monkeypatch) -> None:
    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    monkeypatch.setattr("lmlab.progress.LINE_GAP_S", 60.0)
    map_jobs(_square, list(range(200)), "serial", progress="toy: many")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2, lines  # 200 jobs in well under a minute: the first and the last
    assert lines[0].startswith("toy: many [1/200 jobs]")
    assert lines[1].startswith("toy: many [200/200 jobs]")


def test_a_terminal_gets_a_bar_and_off_is_silent(capsys, monkeypatch) -> None:
    monkeypatch.setenv("LMLAB_PROGRESS", "bar")
    assert mode() == "bar"
    with job_progress("toy: bar", 2) as on_result:
        on_result(0, {"name": "first"})
        on_result(1, {"name": "second"})
    assert "toy: bar" in capsys.readouterr().err
    monkeypatch.setenv("LMLAB_PROGRESS", "off")
    map_jobs(_square, [1, 2], "serial", progress="toy: off")
    assert capsys.readouterr().err == ""


def test_without_a_label_nothing_is_shown(capsys, monkeypatch) -> None:
    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    assert map_jobs(_square, [2], "serial")[0]["value"] == 4
    assert capsys.readouterr().err == ""


def test_steps_of_a_run_are_shown_and_still_logged(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    run = Run(tmp_path / "run")
    with step_progress(run, "toy: training", total=100) as watched:
        assert watched.resume is False and watched.path == run.path  # the run, passed through
        watched.log(50, train_loss=1.25)
        watched.log(100, train_loss=0.5)
        watched.log(None, note="not a step")
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("toy: training [50/100 steps] step 50, loss 1.250")
    assert err[1].startswith("toy: training [100/100 steps] step 100, loss 0.500")
    logged = run.metrics_path.read_text().splitlines()
    assert len(logged) == 3 and '"train_loss": 1.25' in logged[0]


@pytest.mark.usefixtures("toy_plugins")
def test_reproduce_says_which_study_of_how_many_and_counts_claims(cli, tmp_path) -> None:
    r = cli("reproduce", "--only", "toy-mean,toy-copy", "--out", tmp_path / "rep")
    assert r.code == 0, r.err
    assert "[1/2] toy-mean: running the tiny preset" in r.err
    assert "[2/2] toy-copy: running the tiny preset" in r.err
    done = [ln for ln in r.err.splitlines() if " done in " in ln]
    assert len(done) == 2 and "so far" in done[1] and "claims hold" in done[1]


def test_polled_progress_starts_its_clock_at_the_first_work_and_counts_finished_jobs(
        monkeypatch, capsys) -> None:
    import time

    from lmlab.progress import polled_progress

    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    steps = {0: 0, 1: 0}

    def read(finished: set[int]) -> int:
        return sum(10 if i in finished else s for i, s in steps.items())

    with polled_progress("toy", 20, read, lambda i, r: f"job {i} {r}", first_line_s=0.1,
                         poll_s=0.05) as on_result:
        time.sleep(0.3)
        assert capsys.readouterr().err == ""  # no work yet: no line, no clock
        steps[0] = 5
        time.sleep(0.4)
        early = capsys.readouterr().err
        on_result(1, "done")
    late = capsys.readouterr().err
    assert "toy [5/20 steps]" in early and "eta" in early
    assert "toy [15/20 steps] job 1 done" in late


def test_a_study_shows_its_eta_from_the_first_second_and_a_line_every_minute_piped(
        monkeypatch, capsys) -> None:
    import time

    from lmlab.progress import study_progress, work_progress

    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    with study_progress("toy", expected_s=120, first_line_s=0.05, lines_every_s=0.2):
        time.sleep(0.15)
        first = capsys.readouterr().err
        with work_progress("toy: stage", 4, unit="jobs") as stage:
            before = stage.eta_text()  # nothing measured yet: the study's expected time left
            time.sleep(0.5)
            stage.update(1)
            after = stage.eta_text()
    err = capsys.readouterr().err
    assert first.startswith("toy: elapsed 0:00, eta ~2:00 expected")
    assert "for the study, expected" in before and after.startswith("eta 0:0")
    assert err.count("toy: elapsed") >= 2  # the heartbeat, while the first job runs


def test_a_study_without_an_expected_time_says_so_and_a_study_past_it_does_not_count_down(
        monkeypatch, capsys) -> None:
    import time

    from lmlab import progress

    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    with progress.study_progress("toy", expected_s=None, first_line_s=0.01):
        time.sleep(0.1)
    assert "no expected time" in capsys.readouterr().err
    late = progress._Study("toy", 1.0, None)
    late.t0 -= 5
    assert late.eta_text() == "eta ? (over the expected 0:01)"


def test_run_shows_the_declared_time_as_the_study_starts(cli, tmp_path, monkeypatch) -> None:
    import tests.plugins.toy_phases  # noqa: F401  (registers toy-phases)
    from lmlab.progress import study_progress

    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    monkeypatch.setitem(study_progress.__wrapped__.__kwdefaults__, "first_line_s", 0.0)  # 1.2 s
    r = cli("run", "toy-phases", "--out", tmp_path / "a")
    assert r.code == 0, r.err
    assert r.err.splitlines()[0].startswith("toy-phases: elapsed 0:00, eta ~0:02 expected")
    r = cli("run", "toy-phases", "--out", tmp_path / "b", "--set", "train_s=0.1")
    assert "no expected time for these settings" in r.err  # overridden: the declared time is void
