"""The web study's SQLite database: participants, assignments and responses.

Every write is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) on a database in WAL mode
with ``synchronous=FULL``, and the server answers a submission only after its commit, so an
acknowledged response survives a crash (a killed process, a power cut). A response is keyed by
(participant, position) and carries the client's submission key: the same submission sent twice
(a double click, a retry after a lost answer) is stored once and acknowledged twice, and a
different answer to a post already answered is refused.

The database also records the study's design (seed, conditions, feeds); reopening it with a
different design is an error rather than a silent mix of two studies.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmlab.errors import LmlabError
from lmlab.studies.misinfo_eval.data import ATTRIBUTES, Demographics

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    participant_id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    seq INTEGER UNIQUE,
    politics TEXT, race TEXT, education TEXT, gender TEXT, age TEXT,
    condition TEXT, feed_id TEXT, group_key TEXT, assigned_at TEXT
);
CREATE TABLE IF NOT EXISTS responses (
    participant_id TEXT NOT NULL REFERENCES participants(participant_id),
    position INTEGER NOT NULL CHECK (position BETWEEN 0 AND 4),
    post_id TEXT NOT NULL,
    gold INTEGER NOT NULL CHECK (gold IN (0, 1)),
    response INTEGER NOT NULL CHECK (response IN (0, 1)),
    share INTEGER CHECK (share IN (0, 1)),
    submission_key TEXT NOT NULL UNIQUE,
    shown_at TEXT,
    answered_at TEXT NOT NULL,
    PRIMARY KEY (participant_id, position)
);
"""


def now() -> str:
    """UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Assigned:
    """A participant as the database holds them (condition and feed once assigned)."""

    participant_id: str
    demographics: Demographics | None
    condition: str | None
    feed_id: str | None
    group_key: str | None
    seq: int | None


class Conflict(Exception):
    """A write that contradicts what is stored (answered already, different demographics)."""


class Store:
    """The database at `path`, for one study design (`design`: seed, conditions, feeds)."""

    def __init__(self, path: str | Path, design: dict[str, Any] | None = None):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise LmlabError(f"{self.path} is not a file")
        try:
            with self._connect() as db:
                db.executescript(SCHEMA)
                if design is not None:
                    self._check_design(db, design)
        except sqlite3.DatabaseError as e:
            raise LmlabError(f"{self.path}: not a usable SQLite database ({e})") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back on any error."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads (WAL: readers never wait for the writer)."""
        db = self._connect()
        try:
            yield db
        finally:
            db.close()

    def _check_design(self, db: sqlite3.Connection, design: dict[str, Any]) -> None:
        blob = json.dumps(design, sort_keys=True)
        row = db.execute("SELECT value FROM meta WHERE key='design'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('design', ?)", (blob,))
        elif row[0] != blob:
            raise LmlabError(f"{self.path} belongs to another study design (seed, conditions or "
                             "feeds differ); use a new database file")

    # -- participants -------------------------------------------------------------------------
    def new_participant(self) -> tuple[str, str]:
        """Create a participant; returns (participant_id, secret token for their cookie)."""
        token = secrets.token_urlsafe(24)
        pid = "p-" + secrets.token_hex(6)
        with self.transaction() as db:
            db.execute("INSERT INTO participants (participant_id, token_hash, created_at) "
                       "VALUES (?, ?, ?)", (pid, token_hash(token), now()))
        return pid, token

    def by_token(self, token: str | None) -> Assigned | None:
        """The participant holding this token, or None."""
        if not token or len(token) > 100:
            return None
        with self.reading() as db:
            row = db.execute(
                "SELECT participant_id, politics, race, education, gender, age, condition, "
                "feed_id, group_key, seq FROM participants WHERE token_hash=?",
                (token_hash(token),)).fetchone()
        if row is None:
            return None
        demo = Demographics(*row[1:6]) if row[1] is not None else None
        return Assigned(row[0], demo, row[6], row[7], row[8], row[9])

    def assign(self, pid: str, demo: Demographics, choose) -> Assigned:
        """Record demographics and assign a condition and feed, in one transaction.

        `choose(seq, counts) -> (condition, feed_id, group_key)` picks the assignment from the
        participant's arrival number and the per-condition counts so far. A participant already
        assigned keeps their assignment (the same demographics again is a no-op; different
        ones are a Conflict).
        """
        with self.transaction() as db:
            row = db.execute("SELECT seq, politics, race, education, gender, age, condition, "
                             "feed_id, group_key FROM participants WHERE participant_id=?",
                             (pid,)).fetchone()
            if row is None:
                raise Conflict("unknown participant")
            if row[0] is not None:
                if Demographics(*row[1:6]) != demo:
                    raise Conflict("demographics already recorded")
                return Assigned(pid, demo, row[6], row[7], row[8], row[0])
            seq = db.execute("SELECT COUNT(*) FROM participants WHERE seq IS NOT NULL").fetchone()[0]
            counts = dict(db.execute("SELECT condition, COUNT(*) FROM participants "
                                     "WHERE seq IS NOT NULL GROUP BY condition").fetchall())
            condition, feed_id, group_key = choose(seq, counts)
            db.execute(
                "UPDATE participants SET seq=?, politics=?, race=?, education=?, gender=?, age=?, "
                "condition=?, feed_id=?, group_key=?, assigned_at=? WHERE participant_id=?",
                (seq, *(getattr(demo, a) for a in ATTRIBUTES), condition, feed_id, group_key,
                 now(), pid))
        return Assigned(pid, demo, condition, feed_id, group_key, seq)

    # -- responses ----------------------------------------------------------------------------
    def answered(self, pid: str) -> list[int]:
        """The positions this participant has answered."""
        with self.reading() as db:
            rows = db.execute("SELECT position FROM responses WHERE participant_id=? "
                              "ORDER BY position", (pid,)).fetchall()
        return [r[0] for r in rows]

    def add_response(self, pid: str, position: int, post_id: str, gold: bool, response: bool,
                     share: bool | None, submission_key: str, shown_at: str | None) -> str:
        """Store one answer; 'stored', or 'duplicate' for a repeat of the same submission."""
        rec = (int(response), None if share is None else int(share))
        with self.transaction() as db:
            old = db.execute("SELECT submission_key, response, share FROM responses WHERE "
                             "participant_id=? AND position=?", (pid, position)).fetchone()
            if old is not None:
                if old[0] == submission_key and (old[1], old[2]) == rec:
                    return "duplicate"
                raise Conflict("this post is already answered")
            taken = db.execute("SELECT 1 FROM responses WHERE submission_key=?",
                               (submission_key,)).fetchone()
            if taken:
                raise Conflict("submission key already used")
            db.execute("INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (pid, position, post_id, int(gold), *rec, submission_key, shown_at, now()))
        return "stored"

    # -- export -------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """Every response joined with its participant (for `export`; never served over HTTP)."""
        db = self._connect()
        try:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT r.*, p.politics, p.race, p.education, p.gender, p.age, p.condition, "
                "p.feed_id, p.group_key FROM responses r JOIN participants p USING (participant_id) "
                "ORDER BY p.seq, r.position").fetchall()
        finally:
            db.close()
        return [dict(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Numbers of participants, assigned participants and responses."""
        db = self._connect()
        try:
            p = db.execute("SELECT COUNT(*), COUNT(seq) FROM participants").fetchone()
            r = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        finally:
            db.close()
        return {"participants": p[0], "assigned": p[1], "responses": r}

    def dump(self) -> list[Sequence[Any]]:
        """Every row of every table, for tests that check nothing changed."""
        db = self._connect()
        try:
            out: list[Sequence[Any]] = []
            for t in ("meta", "participants", "responses"):
                out += [(t, *r) for r in db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
        finally:
            db.close()
        return out


def export_rows(store: Store) -> list[dict[str, Any]]:
    """The database's responses as rows of the response table (`data.RESPONSE_COLUMNS`)."""
    out = []
    for r in store.rows():
        gold, resp = bool(r["gold"]), bool(r["response"])
        out.append({
            "participant_id": r["participant_id"], "source": "human",
            **{a: r[a] for a in ATTRIBUTES}, "condition": r["condition"], "feed_id": r["feed_id"],
            "position": r["position"], "post_id": r["post_id"], "gold": int(gold),
            "response": int(resp), "correct": int(gold == resp),
            "share": "" if r["share"] is None else r["share"], "preference": "",
            "shown_at": r["shown_at"] or "", "answered_at": r["answered_at"],
        })
    return out
