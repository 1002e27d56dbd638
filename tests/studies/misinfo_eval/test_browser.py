"""The web study end to end in a real browser against a real server process.

Debian's chromium (headless) drives `lmlab misinfo-eval serve` run as a subprocess on a free
loopback port: a participant consents, fills the demographics form and labels five posts; the
rows land in SQLite, `export` writes the CSV that `score` reads; a second participant gets the
next condition of the seeded sequence; the server is SIGKILLed after an acknowledged answer and
restarted, and nothing acknowledged is lost; junk, oversized and cross-participant requests are
refused and leave the database unchanged.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

import lmlab
from lmlab.studies.misinfo_eval.assign import condition_for
from lmlab.studies.misinfo_eval.data import read_responses
from lmlab.studies.misinfo_eval.scoring import score
from lmlab.studies.misinfo_eval.store import Store
from lmlab.studies.misinfo_eval.web import MAX_BODY, load_site

CHROMIUM = "/usr/bin/chromium"
SRC = str(Path(lmlab.__file__).resolve().parents[1])
CLI = [sys.executable, "-c", "from lmlab.cli import main; main()", "misinfo-eval"]
SEED = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def start_server(feeds: Path, db: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([*CLI, "serve", "--feeds", str(feeds), "--db", str(db), "--port",
                             str(port), "--seed", str(SEED)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def condition_of(db: Path, seq: int) -> str:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT condition FROM participants WHERE seq=?", (seq,)).fetchone()[0]


def consent_and_fill(page, base: str) -> None:
    page.goto(base + "/")
    page.check("#agree")
    page.click("#start")
    page.wait_for_url(base + "/demographics")
    for field, value in (("politics", "liberal"), ("race", "white"), ("education", "college"),
                         ("gender", "male"), ("age", "18-29")):
        page.select_option(f"#{field}", value)
    page.click("#continue")
    page.wait_for_url(base + "/feed")
    page.wait_for_selector("#post-4")


def label_post(page, position: int, reliable: bool) -> None:
    page.check(f"#post-{position} input[name='rel-{position}'][value='{int(reliable)}']")
    page.check(f"#post-{position} input[name='share-{position}'][value='0']")
    page.click(f"#post-{position} button.submit")
    page.wait_for_selector(f"#post-{position} button.submit:has-text('Saved')")


@pytest.mark.timeout(420)  # ~20 s on a quiet machine; generous for a loaded CI box
def test_participants_in_a_browser_and_a_killed_server(tmp_path, make_folder):
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (.ci/apt-packages.txt)"
    feeds, db = tmp_path / "feeds", tmp_path / "study.db"
    feeds.mkdir()
    make_folder(feeds)
    conditions = load_site(feeds, seed=SEED).conditions
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(feeds, db, port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            own = lambda route: (route.continue_() if route.request.url.startswith(base)  # noqa: E731
                                 else route.abort())
            # participant 1: the whole flow
            one = browser.new_context()
            one.set_default_timeout(90_000)
            one.route("**/*", own)
            page = one.new_page()
            consent_and_fill(page, base)
            assert page.locator(".post").count() == 5
            for i in range(5):
                label_post(page, i, reliable=i % 2 == 0)
            page.wait_for_selector("#finish:not([hidden])")
            assert Store(db).counts()["responses"] == 5
            assert condition_of(db, 0) == condition_for(0, conditions, SEED)

            # the export is a local command; the scorer reads it
            out = tmp_path / "responses.csv"
            subprocess.run([*CLI, "export", "--db", str(db), "--out", str(out)], env=env(),
                           check=True, capture_output=True)
            rows = read_responses(out)
            assert len(rows) == 5 and {r["participant_id"] for r in rows} == {
                rows[0]["participant_id"]}
            m = score(rows, n_boot=200)
            c0 = condition_of(db, 0)
            assert m[f"accuracy.{c0}.n"] == 5

            # participant 2 gets the next condition of the seeded sequence
            two = browser.new_context()
            two.set_default_timeout(90_000)
            two.route("**/*", own)
            page2 = two.new_page()
            consent_and_fill(page2, base)
            assert condition_of(db, 1) == condition_for(1, conditions, SEED)
            label_post(page2, 0, True)
            label_post(page2, 1, False)

            # kill the server right after an acknowledged answer: nothing acknowledged is lost
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            assert Store(db).counts()["responses"] == 7
            server = start_server(feeds, db, port)
            page2.reload()
            page2.wait_for_selector("#post-4")
            assert page2.locator("button.submit:has-text('Saved')").count() == 2
            for i in (2, 3, 4):
                label_post(page2, i, True)
            assert Store(db).counts()["responses"] == 10

            # junk, oversized and cross-participant requests: refused, database unchanged
            cookies = {c["name"]: c["value"] for c in two.cookies()}
            pid_one = rows[0]["participant_id"]
            before = Store(db).dump()
            with httpx.Client(base_url=base, cookies=cookies) as http:
                h = {"Content-Type": "application/json"}
                assert http.post("/api/responses", content=b"junk{", headers=h).status_code == 400
                big = b'{"x": "' + b"y" * (2 * MAX_BODY) + b'"}'
                assert http.post("/api/responses", content=big, headers=h).status_code == 413
                r = http.post("/api/responses", json={
                    "participant_id": pid_one, "position": 0, "post_id": "feed-1/1",
                    "reliable": True, "submission_key": "x" * 32})
                assert r.status_code == 403
                r = http.post("/api/demographics", json={
                    "participant_id": pid_one, "politics": "liberal", "race": "white",
                    "education": "college", "gender": "male", "age": "18-29"})
                assert r.status_code == 403
            assert Store(db).dump() == before
            browser.close()
    finally:
        server.kill()
        server.wait(10)
