"""PeopleJoin-QA data: items, organizations, and where the files are.

An organization ("tenant") is one Spider database split between fictional employees: each table
(or each half of a split table, ids ending ``_0``/``_1``) is a document held by one member; a
member who advertises a topic may hold only a "Try contacting <Full Name> ..." redirect note; the
real holder then has no directory entry and shows as ``unknown``. The requester is ``alice``.

Files (the release's format, commit 8470d73): ``dev.jsonl`` (one item per line),
``tenant_data_v2/<db>.json`` (one organization each) and ``selected_test_ids.txt``.
Every loader validates at the boundary and fails with one line naming the file, line and field.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from lmlab.data import DataSource, resolve
from lmlab.errors import LmlabError

__all__ = [
    "DATA_ENV",
    "REQUESTER",
    "UNANSWERABLE_ANSWER",
    "Document",
    "Organization",
    "Person",
    "QAItem",
    "data_dir",
    "data_source",
    "load_items",
    "load_organization",
    "load_test_ids",
]

DATA_ENV = "LMLAB_DATA_PEOPLEJOIN_QA"
REQUESTER = "alice"
# The reference answer of every unanswerable item, verbatim from the release.
UNANSWERABLE_ANSWER = "[Unanswerable query] There isn't enough information to answer this query"
# A redirect note: title "Try contacting <Full Name>", content "<user> has relevant information ..."
_REDIRECT = re.compile(r"^\s*(?P<user>\w+) has relevant information", re.IGNORECASE)
_ITEM_FIELDS = ("datum_id", "question", "db_id", "table_names", "gold_sql_query",
                "execution_result", "tenant_id", "reference_people", "datum_attributes")
_ATTRS = ("datum_requires_accessing_subtable_division", "datum_requires_redirection_handling",
          "datum_is_unanswerable")


def data_source(path: str = "") -> DataSource:
    """Where PeopleJoin-QA comes from: `path` if given, else ``$LMLAB_DATA_PEOPLEJOIN_QA``, else
    the copy packaged with lmlab (see `lmlab.data.resolve`), checked to hold the files we read."""
    src = resolve("peoplejoin-qa", path or None)
    p = src.path
    if not (p / "dev.jsonl").is_file() or not (p / "tenant_data_v2").is_dir():
        raise LmlabError(f"{p}: not a PeopleJoin-QA folder (needs dev.jsonl and tenant_data_v2/)")
    return src


def data_dir(path: str = "") -> Path:
    """The PeopleJoin-QA folder (see `data_source`)."""
    return data_source(path).path


@dataclass(frozen=True)
class Person:
    """A member of an organization."""

    user_id: str
    full_name: str
    email: str

    def to_dict(self) -> dict[str, str]:
        return {"user_id": self.user_id, "full_name": self.full_name, "email": self.email}


@dataclass(frozen=True)
class Document:
    """One document: a table (JSON rows), a part of one, or a redirect note."""

    url: str
    title: str
    content: str

    def rows(self) -> list[dict[str, Any]] | None:
        """The table rows when the content is a JSON list of objects, else None."""
        try:
            data = json.loads(self.content)
        except json.JSONDecodeError:
            return None
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return data
        return None


@dataclass(frozen=True)
class Organization:
    """An organization: members, their documents, the directory and the requester."""

    tenant_id: str
    requester: str
    people: tuple[Person, ...]
    documents: dict[str, tuple[Document, ...]]
    descriptions: dict[str, str]  # the directory; members without an entry are "unknown"
    table_names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The database name (``concert_singer``)."""
        return self.tenant_id.rsplit("/", 1)[-1]

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(p.user_id for p in self.people)

    def person(self, user_id: str) -> Person | None:
        """The member with exactly this id."""
        return next((p for p in self.people if p.user_id == user_id), None)

    def docs(self, user_id: str) -> tuple[Document, ...]:
        return self.documents.get(user_id, ())

    def description(self, user_id: str) -> str:
        """The member's directory entry, or ``unknown`` (the release's default)."""
        return self.descriptions.get(user_id, "unknown")

    def directory(self, exclude: str | None = None) -> dict[str, str]:
        """Every member's directory entry (``unknown`` when absent), optionally without one."""
        return {p.user_id: self.description(p.user_id) for p in self.people if p.user_id != exclude}

    def redirects(self) -> dict[str, str]:
        """Members whose documents are a redirect note -> the user id the note points to."""
        out = {}
        for uid, docs in self.documents.items():
            for d in docs:
                m = _REDIRECT.match(d.content) if d.title.lower().startswith("try contacting") else None
                if m and self.person(m["user"]) is not None:
                    out[uid] = m["user"]
        return out

    def doc_chars(self, user_id: str) -> int:
        """Characters of a member's documents (what a teammate persona must read)."""
        return sum(len(d.content) for d in self.docs(user_id))

    def table_holders(self) -> dict[str, list[str]]:
        """Table name (parts merged, ``singer_0`` -> ``singer``) -> members holding a part."""
        out: dict[str, list[str]] = {}
        for uid, docs in self.documents.items():
            for d in docs:
                if d.rows() is None:
                    continue
                out.setdefault(base_table(d.title), []).append(uid)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "organization") -> Organization:
        """Build from the release's JSON, validating it (errors name `where` and the field)."""
        for key in ("tenant_id", "primary_user", "users", "user_id_to_documents"):
            if key not in d:
                raise LmlabError(f"{where}: missing field {key!r}")
        try:
            people = tuple(Person(u["user_id"], u["full_name"], u["email"]) for u in d["users"])
            requester = d["primary_user"]["user_id"]
            documents = {
                uid: tuple(Document(x["url"], x["title"], x["content"]) for x in docs)
                for uid, docs in d["user_id_to_documents"].items()
            }
        except (KeyError, TypeError) as e:
            raise LmlabError(f"{where}: malformed member or document ({type(e).__name__}: {e})") from None
        ids = {p.user_id for p in people}
        if requester not in ids:
            raise LmlabError(f"{where}: the primary user {requester!r} is not a member")
        stray = sorted(set(documents) - ids)
        if stray:
            raise LmlabError(f"{where}: documents of non-members {stray}")
        descriptions = {k: str(v).strip() for k, v in (d.get("user_id_to_descriptions") or {}).items()}
        tables = {k: tuple(v) for k, v in (d.get("user_id_to_table_names") or {}).items()}
        return cls(str(d["tenant_id"]), requester, people, documents, descriptions, tables)

    def to_dict(self) -> dict[str, Any]:
        """The release's JSON shape (the fields this module reads)."""
        return {
            "tenant_id": self.tenant_id,
            "primary_user": self.person(self.requester).to_dict(),  # type: ignore[union-attr]
            "users": [p.to_dict() for p in self.people],
            "user_id_to_documents": {
                u: [{"url": x.url, "title": x.title, "content": x.content} for x in docs]
                for u, docs in self.documents.items()},
            "user_id_to_descriptions": dict(self.descriptions),
            "user_id_to_table_names": {k: list(v) for k, v in self.table_names.items()},
        }


def base_table(title: str) -> str:
    """A document title without its split suffix: ``singer_0`` -> ``singer``."""
    return re.sub(r"_\d+$", "", title)


@dataclass(frozen=True)
class QAItem:
    """One PeopleJoin-QA item."""

    datum_id: str
    question: str
    db_id: str
    table_names: tuple[str, ...]
    gold_sql: str
    answer: str  # the release's `execution_result`: JSON rows, or UNANSWERABLE_ANSWER
    tenant_id: str
    reference_people: tuple[str, ...]
    split: bool = False  # needs a table divided between members
    redirection: bool = False  # needs following a redirect note
    unanswerable: bool = False

    @property
    def kind(self) -> str:
        """``unanswerable``, ``redirection``, ``split``, ``split+redirection`` or ``plain``."""
        if self.unanswerable:
            return "unanswerable"
        parts = [n for n, v in (("split", self.split), ("redirection", self.redirection)) if v]
        return "+".join(parts) or "plain"

    def gold_rows(self) -> list[list[Any]] | None:
        """The reference rows (None for an unanswerable item)."""
        if self.unanswerable:
            return None
        return json.loads(self.answer)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "item") -> QAItem:
        """Build from one release line, validating it (errors name `where` and the field)."""
        if not isinstance(d, dict):
            raise LmlabError(f"{where}: not a JSON object")
        for key in _ITEM_FIELDS:
            if key not in d:
                raise LmlabError(f"{where}: missing field {key!r}")
        attrs = d["datum_attributes"]
        if not isinstance(attrs, dict) or any(not isinstance(attrs.get(a), bool) for a in _ATTRS):
            raise LmlabError(f"{where}: datum_attributes needs booleans {', '.join(_ATTRS)}")
        if not isinstance(d["reference_people"], list):
            raise LmlabError(f"{where}: reference_people must be a list")
        unanswerable = attrs["datum_is_unanswerable"]
        answer = d["execution_result"]
        if not isinstance(answer, str):
            raise LmlabError(f"{where}: execution_result must be a string")
        if not unanswerable:
            try:
                rows = json.loads(answer)
            except json.JSONDecodeError:
                raise LmlabError(f"{where}: execution_result is not JSON rows") from None
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise LmlabError(f"{where}: execution_result is not a list of rows")
        return cls(
            datum_id=str(d["datum_id"]), question=str(d["question"]), db_id=str(d["db_id"]),
            table_names=tuple(d["table_names"]), gold_sql=str(d["gold_sql_query"]), answer=answer,
            tenant_id=str(d["tenant_id"]), reference_people=tuple(d["reference_people"]),
            split=attrs["datum_requires_accessing_subtable_division"],
            redirection=attrs["datum_requires_redirection_handling"],
            unanswerable=unanswerable,
        )

    def to_dict(self) -> dict[str, Any]:
        """The release's line format."""
        return {
            "datum_id": self.datum_id, "question": self.question, "db_id": self.db_id,
            "table_names": list(self.table_names), "gold_sql_query": self.gold_sql,
            "execution_result": self.answer, "tenant_id": self.tenant_id,
            "reference_people": list(self.reference_people),
            "datum_attributes": {_ATTRS[0]: self.split, _ATTRS[1]: self.redirection,
                                 _ATTRS[2]: self.unanswerable},
        }


def load_items(path: str | os.PathLike) -> list[QAItem]:
    """Every item of a JSONL file; a malformed line fails naming ``file:line`` and the field."""
    p = Path(path)
    if not p.is_file():
        raise LmlabError(f"{p}: no such items file")
    items, seen = [], set()
    for no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{p.name}:{no}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise LmlabError(f"{where}: not JSON ({e.msg})") from None
        item = QAItem.from_dict(d, where=f"{where} ({d.get('datum_id', '?')})"
                                if isinstance(d, dict) else where)
        if item.datum_id in seen:
            raise LmlabError(f"{where}: duplicate datum_id {item.datum_id!r}")
        seen.add(item.datum_id)
        items.append(item)
    return items


@lru_cache(maxsize=64)
def _load_org_cached(path: str, mtime: float) -> Organization:
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise LmlabError(f"{p}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(d, dict):
        raise LmlabError(f"{p}: not a JSON object")
    return Organization.from_dict(d, where=str(p.name))


def load_organization(root: str | os.PathLike, tenant_id: str) -> Organization:
    """The organization `tenant_id` (``tenant_data_v2/concert_singer``) under the data folder."""
    p = Path(root) / f"{tenant_id}.json"
    if not p.is_file():
        raise LmlabError(f"{p}: no such organization file (tenant {tenant_id!r})")
    return _load_org_cached(str(p), p.stat().st_mtime)


def load_test_ids(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The paper's evaluated test items: (datum_id, tenant_id) pairs."""
    p = Path(path)
    if not p.is_file():
        raise LmlabError(f"{p}: no such file")
    out = []
    for no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or (no == 1 and line.startswith("datum_id")):
            continue
        parts = [s.strip() for s in line.split(",")]
        if len(parts) != 2 or not all(parts):
            raise LmlabError(f"{p.name}:{no}: expected 'datum_id, tenant_id'")
        out.append((parts[0], parts[1]))
    return out
