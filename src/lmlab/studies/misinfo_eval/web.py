"""The mock feed as a web app: consent, demographics, five posts with an intervention, labels.

``lmlab misinfo-eval serve --feeds DIR --db FILE`` serves it (uvicorn, 127.0.0.1 by default).
DIR holds ``feeds.csv`` and one filled ``<condition>.csv`` per condition offered (control needs
none); see `conditions`. The server is held to a server's standards:

* it serves no response data: answers go into SQLite and come out only through the local
  ``export`` command; a participant's page learns only which of its own posts are answered;
* a participant is known by an HttpOnly, SameSite=Strict cookie holding a random token (only
  its hash is stored); every submitted field is checked against that participant's own
  assignment (their id, their feed's post at that position), so nobody can label another
  participant's feed or choose a condition (no request field can name one);
* request bodies are JSON only, at most `MAX_BODY` bytes (a longer or unsized body is refused
  before it is read in full), validated strictly (unknown fields, wrong types, out-of-range
  values are 4xx) and nothing is stored unless everything passes;
* every write is one SQLite transaction committed before the answer (`store`), and a repeated
  submission (same key) is acknowledged without a second row.

Texts are rendered as text (``textContent``), never as HTML, so an LLM explanation cannot
inject markup; a Content-Security-Policy allows only this server's own script.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from starlette.requests import Request as HTTPRequest  # fastapi's own request type

from lmlab.errors import LmlabError, require
from lmlab.studies.misinfo_eval.assign import condition_for, feed_for, nearest_group
from lmlab.studies.misinfo_eval.conditions import CONDITIONS, condition_file, read_condition_file
from lmlab.studies.misinfo_eval.data import ATTRIBUTES, CHOICES, Demographics, Feed, load_feeds
from lmlab.studies.misinfo_eval.store import Conflict, Store

MAX_BODY = 2048
COOKIE = "mfe_token"
KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass
class Site:
    """What the server offers: feeds, the conditions in play and their texts, the seed."""

    feeds: dict[str, Feed]
    conditions: tuple[str, ...]
    texts: dict[str, dict[tuple[str, str], list[str]]]
    seed: int
    feeds_digest: str

    @property
    def design(self) -> dict[str, Any]:
        return {"seed": self.seed, "conditions": list(self.conditions), "feeds": self.feeds_digest}

    def groups(self, condition: str, feed_id: str) -> list[str]:
        return sorted(g for (f, g) in self.texts.get(condition, {}) if f == feed_id and g)

    def choose(self, demo: Demographics):
        """The assignment function `Store.assign` calls inside its transaction."""
        def pick(seq: int, counts: dict[str, int]) -> tuple[str, str, str | None]:
            cond = condition_for(seq, self.conditions, self.seed)
            feed_id = feed_for(counts.get(cond, 0), sorted(self.feeds), cond, self.seed)
            group = nearest_group(demo, self.groups(cond, feed_id)) if cond == "personalized" else None
            return cond, feed_id, group
        return pick

    def shown(self, condition: str, feed_id: str, group: str | None) -> list[str]:
        """The five intervention texts a participant of this assignment sees."""
        if condition == "control":
            return [""] * 5
        return self.texts[condition][(feed_id, group or "")]


def load_site(folder: str | Path, conditions: Sequence[str] | None = None, seed: int = 0) -> Site:
    """Read a feeds folder; `conditions` (default: every condition it can fill) must be fillable."""
    folder = Path(folder)
    if not (folder / "feeds.csv").is_file():
        raise LmlabError(f"{folder}: no feeds.csv (the feeds in the release's wide layout)")
    feeds = {f.feed_id: f for f in load_feeds(folder / "feeds.csv")}
    texts: dict[str, dict[tuple[str, str], list[str]]] = {}
    for c in CONDITIONS[1:]:
        if condition_file(folder, c).is_file():
            texts[c] = read_condition_file(condition_file(folder, c), feeds)
    usable = ["control"]
    for c, t in texts.items():
        want_group = c == "personalized"
        if all(any(f == fid and bool(g) == want_group for f, g in t) for fid in feeds):
            usable.append(c)
    chosen = list(conditions) if conditions else usable
    for c in chosen:
        if c not in CONDITIONS:
            raise LmlabError(f"unknown condition {c!r}; conditions: {', '.join(CONDITIONS)}")
        if c not in usable:
            raise LmlabError(f"condition {c!r} has no complete {c}.csv in {folder}")
    if len(set(chosen)) != len(chosen):
        raise LmlabError("a condition is named twice")
    digest = hashlib.sha256((folder / "feeds.csv").read_bytes()).hexdigest()
    order = tuple(c for c in CONDITIONS if c in chosen)
    return Site(feeds, order, {c: texts[c] for c in order if c in texts}, seed, digest)


# -- request bodies -----------------------------------------------------------------------------
def _models():
    from pydantic import BaseModel, ConfigDict, Field

    class Body(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

    class ConsentIn(Body):
        agree: Literal[True]

    class DemographicsIn(Body):
        participant_id: str = Field(max_length=40)
        politics: str = Field(max_length=40)
        race: str = Field(max_length=40)
        education: str = Field(max_length=40)
        gender: str = Field(max_length=40)
        age: str = Field(max_length=40)

    class ResponseIn(Body):
        participant_id: str = Field(max_length=40)
        position: int = Field(ge=0, le=4)
        post_id: str = Field(max_length=200)
        reliable: bool
        share: bool | None = None
        submission_key: str = Field(pattern=KEY_RE.pattern)
        shown_at: str | None = Field(default=None, max_length=40)

    return ConsentIn, DemographicsIn, ResponseIn


class HTTPError(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


async def _json_body(request, model):
    """Read at most MAX_BODY bytes of JSON and validate it against `model` (4xx otherwise)."""
    from pydantic import ValidationError

    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPError(415, "send application/json")
    length = request.headers.get("content-length")
    if length is None:
        raise HTTPError(411, "Content-Length required")
    if not length.isdigit() or int(length) > MAX_BODY:
        raise HTTPError(413, f"request body over {MAX_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPError(413, f"request body over {MAX_BODY} bytes")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPError(400, "malformed JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "body"
        raise HTTPError(422, f"{where}: {first.get('msg', 'invalid')}") from None


def create_app(site: Site, store: Store):
    """The FastAPI application for `site`, writing to `store`."""
    fastapi = require("fastapi", extra="misinfo")
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    from lmlab.studies.misinfo_eval import pages

    ConsentIn, DemographicsIn, ResponseIn = _models()
    app = fastapi.FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPError)
    async def _http_error(request, exc: HTTPError):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.middleware("http")
    async def _headers(request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def me(request):
        p = await run_in_threadpool(store.by_token, request.cookies.get(COOKIE))
        if p is None:
            raise HTTPError(401, "no participant: start at the consent page")
        return p

    def page(body: str) -> HTMLResponse:
        return HTMLResponse(pages.page(body))

    @app.get("/", response_class=HTMLResponse)
    async def consent_page():
        return page(pages.CONSENT)

    @app.get("/demographics", response_class=HTMLResponse)
    async def demographics_page():
        return page(pages.demographics_form(CHOICES))

    @app.get("/feed", response_class=HTMLResponse)
    async def feed_page():
        return page(pages.FEED)

    @app.get("/done", response_class=HTMLResponse)
    async def done_page():
        return page(pages.DONE)

    @app.get("/static/app.js")
    async def script():
        return Response(pages.SCRIPT, media_type="text/javascript")

    @app.get("/static/style.css")
    async def style():  # a file, not inline: the Content-Security-Policy forbids inline styles
        return Response(pages.STYLE, media_type="text/css")

    @app.post("/api/consent")
    async def consent(request: HTTPRequest):
        await _json_body(request, ConsentIn)
        p = await run_in_threadpool(store.by_token, request.cookies.get(COOKIE))
        if p is not None:
            return {"participant_id": p.participant_id}
        pid, token = await run_in_threadpool(store.new_participant)
        resp = JSONResponse({"participant_id": pid})
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=7 * 24 * 3600)
        return resp

    @app.get("/api/me")
    async def whoami(request: HTTPRequest):
        p = await me(request)
        answered = await run_in_threadpool(store.answered, p.participant_id)
        return {"participant_id": p.participant_id, "assigned": p.condition is not None,
                "answered": len(answered)}

    @app.post("/api/demographics")
    async def demographics(request: HTTPRequest):
        body = await _json_body(request, DemographicsIn)
        p = await me(request)
        if body.participant_id != p.participant_id:
            raise HTTPError(403, "participant_id is not yours")
        demo = Demographics(*(getattr(body, a) for a in ATTRIBUTES))
        try:
            demo.validate_choices()
        except LmlabError as e:
            raise HTTPError(422, str(e)) from None
        try:
            await run_in_threadpool(store.assign, p.participant_id, demo, site.choose(demo))
        except Conflict as e:
            raise HTTPError(409, str(e)) from None
        return {"status": "assigned"}

    @app.get("/api/feed")
    async def feed(request: HTTPRequest):
        p = await me(request)
        if p.condition is None or p.feed_id is None:
            raise HTTPError(409, "fill in the demographics form first")
        f = site.feeds[p.feed_id]
        texts = site.shown(p.condition, p.feed_id, p.group_key)
        answered = await run_in_threadpool(store.answered, p.participant_id)
        # No label, no condition name: only what the page shows.
        return {"participant_id": p.participant_id, "answered": answered, "posts": [
            {"position": i, "post_id": post.post_id, "headline": post.headline,
             "source": post.source, "image_url": post.image_url, "time": post.time,
             "intervention": texts[i]}
            for i, post in enumerate(f.posts)]}

    @app.post("/api/responses")
    async def respond(request: HTTPRequest):
        body = await _json_body(request, ResponseIn)
        p = await me(request)
        if body.participant_id != p.participant_id:
            raise HTTPError(403, "participant_id is not yours")
        if p.condition is None or p.feed_id is None:
            raise HTTPError(409, "fill in the demographics form first")
        post = site.feeds[p.feed_id].posts[body.position]
        if body.post_id != post.post_id:
            raise HTTPError(422, "post_id is not the post at this position of your feed")
        if body.shown_at is not None:
            try:
                datetime.fromisoformat(body.shown_at)
            except ValueError:
                raise HTTPError(422, "shown_at is not an ISO 8601 time") from None
        try:
            status = await run_in_threadpool(
                store.add_response, p.participant_id, body.position, body.post_id, post.label,
                body.reliable,
                body.share, body.submission_key, body.shown_at)
        except Conflict as e:
            raise HTTPError(409, str(e)) from None
        return {"status": status}

    return app


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (what `serve` binds to unless told otherwise)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(feeds: str | Path, db: str | Path, *, host: str = "127.0.0.1", port: int = 8000,
          seed: int = 0, conditions: Sequence[str] | None = None, allow_remote: bool = False,
          log_level: str = "warning") -> None:
    """Run the web app with uvicorn until interrupted."""
    if not is_loopback(host) and not allow_remote:
        raise LmlabError(f"refusing to bind {host}: not a loopback address (pass --allow-remote "
                         "to serve other machines, behind HTTPS)")
    site = load_site(feeds, conditions, seed)
    store = Store(db, site.design)
    uvicorn = require("uvicorn", extra="misinfo")
    print(f"serving {', '.join(site.conditions)} on http://{host}:{port}/ (database {db}); "
          "Ctrl-C stops", flush=True)
    uvicorn.run(create_app(site, store), host=host, port=port, log_level=log_level,
                limit_concurrency=64, timeout_keep_alive=5, h11_max_incomplete_event_size=16384)
