"""The web app through its HTTP API (in process): flow, assignment, validation, idempotency."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from lmlab.errors import LmlabError
from lmlab.studies.misinfo_eval.assign import condition_for, nearest_group
from lmlab.studies.misinfo_eval.data import Demographics
from lmlab.studies.misinfo_eval.store import Store, export_rows
from lmlab.studies.misinfo_eval.web import MAX_BODY, create_app, is_loopback, load_site

DEMO = {"politics": "moderate", "race": "asian", "education": "college", "gender": "female",
        "age": "30-44"}


@pytest.fixture
def app_env(tmp_path, make_folder):
    make_folder(tmp_path)
    site = load_site(tmp_path, seed=3)
    store = Store(tmp_path / "study.db", site.design)
    return site, store, TestClient(create_app(site, store))


def join(client, demo=DEMO):
    r = client.post("/api/consent", json={"agree": True})
    assert r.status_code == 200, r.text
    pid = r.json()["participant_id"]
    r = client.post("/api/demographics", json={"participant_id": pid, **demo})
    assert r.status_code == 200, r.text
    return pid, client.get("/api/feed").json()


def answer(client, pid, post, key, reliable=True, share=None):
    return client.post("/api/responses", json={
        "participant_id": pid, "position": post["position"], "post_id": post["post_id"],
        "reliable": reliable, "share": share, "submission_key": key})


def test_site_offers_every_fillable_condition(app_env):
    site, _, _ = app_env
    assert site.conditions == ("control", "label", "generic-human", "generic-ai", "llm",
                               "personalized")


def test_full_flow_stores_five_rows_that_export_and_score(app_env):
    site, store, client = app_env
    pid, feed = join(client)
    assert len(feed["posts"]) == 5
    assert all("label" not in p and "gold" not in p for p in feed["posts"])
    for i, p in enumerate(feed["posts"]):
        assert answer(client, pid, p, f"key-{pid}-{i}-abcdefgh", reliable=i % 2 == 0,
                      share=i == 0).json() == {"status": "stored"}
    rows = export_rows(store)
    assert len(rows) == 5 and {r["participant_id"] for r in rows} == {pid}
    assert rows[0]["condition"] == condition_for(0, site.conditions, 3)
    assert client.get("/api/me").json()["answered"] == 5


def test_assignment_is_balanced_and_follows_the_seeded_blocks(app_env, tmp_path):
    site, store, _ = app_env
    k = len(site.conditions)
    got = []
    for _ in range(2 * k):
        c = TestClient(create_app(site, store))
        join(c)
        got.append(store.by_token(c.cookies.get("mfe_token")).condition)
    assert got == [condition_for(i, site.conditions, 3) for i in range(2 * k)]
    assert sorted(got[:k]) == sorted(site.conditions) == sorted(got[k:])


def test_personalized_uses_the_nearest_group():
    me = Demographics(**DEMO)
    groups = ["liberal_white_college_male_18-29", "moderate_asian_college_female_45-64"]
    assert nearest_group(me, groups) == "moderate_asian_college_female_45-64"


def test_double_submit_is_stored_once_and_changes_are_refused(app_env):
    _, store, client = app_env
    pid, feed = join(client)
    p = feed["posts"][0]
    assert answer(client, pid, p, "k" * 20).json() == {"status": "stored"}
    assert answer(client, pid, p, "k" * 20).json() == {"status": "duplicate"}
    before = store.dump()
    r = answer(client, pid, p, "k" * 20, reliable=False)
    assert r.status_code == 409
    r = answer(client, pid, p, "z" * 20)
    assert r.status_code == 409
    assert store.dump() == before and store.counts()["responses"] == 1


@pytest.mark.parametrize("mutate,status", [
    (lambda b: {**b, "condition": "label"}, 422),            # no field can choose a condition
    (lambda b: {**b, "position": 7}, 422),
    (lambda b: {**b, "position": "1"}, 422),                 # strict types
    (lambda b: {**b, "reliable": "yes"}, 422),
    (lambda b: {**b, "post_id": "feed-9/1"}, 422),           # not this position's post
    (lambda b: {**b, "submission_key": "short"}, 422),
    (lambda b: {**b, "shown_at": "yesterday"}, 422),
    (lambda b: {**b, "participant_id": "p-someoneelse"}, 403),
    (lambda b: {k: v for k, v in b.items() if k != "reliable"}, 422),
])
def test_malformed_submissions_are_refused_and_store_nothing(app_env, mutate, status):
    _, store, client = app_env
    pid, feed = join(client)
    p = feed["posts"][1]
    body = {"participant_id": pid, "position": 1, "post_id": p["post_id"], "reliable": True,
            "share": None, "submission_key": "a" * 32}
    before = store.dump()
    r = client.post("/api/responses", json=mutate(body))
    assert r.status_code == status, r.text
    assert store.dump() == before


def test_junk_oversized_and_unauthenticated_requests(app_env):
    site, store, client = app_env
    pid, feed = join(client)
    before = store.dump()
    h = {"Content-Type": "application/json"}
    assert client.post("/api/responses", content=b"{not json", headers=h).status_code == 400
    assert client.post("/api/responses", content=b"\xff\xfe", headers=h).status_code == 400
    big = b'{"participant_id": "' + b"x" * (MAX_BODY + 10) + b'"}'
    assert client.post("/api/responses", content=big, headers=h).status_code == 413
    assert client.post("/api/responses", content=b"a=b",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}
                       ).status_code == 415
    stranger = TestClient(create_app(site, store))
    r = stranger.post("/api/responses", json={
        "participant_id": pid, "position": 0, "post_id": feed["posts"][0]["post_id"],
        "reliable": True, "submission_key": "b" * 32})
    assert r.status_code == 401
    assert store.dump() == before


def test_cross_participant_submission_is_refused(app_env):
    site, store, alice = app_env
    pid_a, feed_a = join(alice)
    bob = TestClient(create_app(site, store))
    join(bob)
    before = store.dump()
    r = answer(bob, pid_a, feed_a["posts"][0], "c" * 32)  # Bob names Alice
    assert r.status_code == 403
    assert store.dump() == before


def test_no_response_data_is_served(app_env):
    _, _, client = app_env
    pid, feed = join(client)
    answer(client, pid, feed["posts"][0], "d" * 32, reliable=False)
    for path in ("/export", "/api/responses", "/api/export", "/docs", "/openapi.json"):
        assert client.get(path).status_code in (404, 405)
    again = client.get("/api/feed").json()
    assert again["answered"] == [0]
    assert "reliable" not in str(again) and "response" not in str(again)


def test_design_change_and_bad_folders_are_one_line_errors(tmp_path, make_folder):
    make_folder(tmp_path, personalized=False)
    site = load_site(tmp_path, seed=0)
    assert "personalized" not in site.conditions
    Store(tmp_path / "db.sqlite", site.design)
    with pytest.raises(LmlabError, match="another study design"):
        Store(tmp_path / "db.sqlite", load_site(tmp_path, seed=1).design)
    with pytest.raises(LmlabError, match="personalized"):
        load_site(tmp_path, ["control", "personalized"])
    with pytest.raises(LmlabError, match=r"feeds\.csv"):
        load_site(tmp_path / "nowhere")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")


def test_serve_refuses_a_public_address_before_touching_anything(tmp_path, make_folder):
    from lmlab.studies.misinfo_eval.web import serve

    make_folder(tmp_path)
    with pytest.raises(LmlabError, match="not a loopback address"):
        serve(tmp_path, tmp_path / "db.sqlite", host="0.0.0.0")
    assert not (tmp_path / "db.sqlite").exists()


def test_pages_script_and_style_are_served_under_a_strict_policy(app_env):
    _, _, client = app_env
    for path in ("/", "/demographics", "/feed", "/done"):
        r = client.get(path)
        assert r.status_code == 200 and "/static/app.js" in r.text and "<style" not in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert "textContent" in client.get("/static/app.js").text
