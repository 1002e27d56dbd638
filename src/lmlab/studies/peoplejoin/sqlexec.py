"""Execution-based answers: an organization's tables in SQLite, the gold SQL, and row multisets.

`build_database` rebuilds an organization's tables (or one member's) in an in-memory SQLite
database: split parts (``singer_0``, ``singer_1``) are merged, table and column names become
identifiers (spaces -> underscores), and a column whose every value reads as a number gets
NUMERIC affinity (the release stores many numbers as strings, e.g. ``"year": "2014"``).
`run_gold` maps the gold SQL's identifiers onto those columns: the release's column names are
Spider's *normalized* names (``stu id`` for ``StuID``), so an identifier matches a column when
both agree after lowercasing and removing underscores and spaces. `same_rows` compares results as
an order-insensitive multiset of rows with numbers compared as numbers.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable
from typing import Any

from lmlab.studies.peoplejoin.data import Organization, QAItem, base_table

__all__ = ["answer_check", "build_database", "canonical", "reproduce", "run_gold", "same_rows"]

_NOT_ENOUGH = re.compile(
    r"(?:not|n.t|no) enough information|insufficient information|cannot be answered|can ?not answer|"
    r"unable to (?:find|answer|determine)|no (?:one|body) (?:has|had)|could ?n[o']t find|"
    r"do(?:es)? ?n[o']t have (?:the|enough|any|this|that)|no information|unanswerable|"
    r"not available|isn't available", re.IGNORECASE)


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", "", name).lower()


def _ident(name: str) -> str:
    return re.sub(r"\W+", "_", name.strip()).strip("_") or "col"


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return True
    if isinstance(v, str):
        try:
            float(v)
            return v.strip() != ""
        except ValueError:
            return False
    return False


def build_database(org: Organization, members: Iterable[str] | None = None) -> sqlite3.Connection:
    """The tables held by `members` (default: everyone) in a fresh in-memory SQLite database."""
    wanted = set(org.member_ids if members is None else members)
    tables: dict[str, list[dict[str, Any]]] = {}
    for uid, docs in org.documents.items():
        if uid not in wanted:
            continue
        for d in docs:
            rows = d.rows()
            if rows is not None:
                tables.setdefault(_ident(base_table(d.title)), []).extend(rows)
    conn = sqlite3.connect(":memory:")
    for name, rows in tables.items():
        cols: list[str] = []
        for r in rows:
            cols += [c for c in r if c not in cols]
        if not cols:
            continue
        decl = []
        for c in cols:
            vals = [r.get(c) for r in rows if r.get(c) not in (None, "")]
            affinity = "NUMERIC" if vals and all(_is_number(v) for v in vals) else "TEXT"
            decl.append(f'"{_ident(c)}" {affinity}')
        conn.execute(f'CREATE TABLE "{name}" ({", ".join(decl)})')
        marks = ", ".join("?" * len(cols))
        conn.executemany(f'INSERT INTO "{name}" VALUES ({marks})',
                         [[_cell(r.get(c)) for c in cols] for r in rows])
    return conn


def _cell(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, list | dict) else v


_KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "AS", "JOIN", "ON", "GROUP", "BY", "ORDER",
    "HAVING", "LIMIT", "DESC", "ASC", "DISTINCT", "COUNT", "SUM", "AVG", "MIN", "MAX", "LIKE",
    "BETWEEN", "UNION", "INTERSECT", "EXCEPT", "IS", "NULL", "EXISTS", "CASE", "WHEN", "THEN",
    "ELSE", "END", "ALL", "ANY", "OFFSET", "LEFT", "RIGHT", "INNER", "OUTER", "CAST",
}
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[A-Za-z_][A-Za-z0-9_]*|.", re.DOTALL)


def _schema(conn: sqlite3.Connection) -> dict[str, str]:
    """Identifier key -> actual name, over every table and column."""
    names: dict[str, str] = {}
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        names.setdefault(_key(table), table)
        for col in conn.execute(f'PRAGMA table_info("{table}")'):
            names.setdefault(_key(col[1]), col[1])
    return names


def _abbreviates(key: str, words: list[str]) -> bool:
    """Whether `key` is the words' prefixes run together, one non-empty prefix per word
    (``stuid`` for ``student id``, ``fname`` for ``first name``, ``reftemplatetypes``)."""
    if not words:
        return not key
    head, rest = words[0], words[1:]
    return any(key[:n] == head[:n] and _abbreviates(key[n:], rest)
               for n in range(min(len(head), len(key)), 0, -1))


def _resolve(token: str, names: dict[str, str]) -> str | None:
    """The database name an SQL identifier means: equal after normalizing, else the one name
    it uniquely abbreviates (Spider's normalized names spell abbreviations out)."""
    key = _key(token)
    if key in names:
        return names[key]
    hits = {name for name in names.values()
            if len(name.split("_")) > 1 and _abbreviates(key, name.lower().split("_"))}
    return hits.pop() if len(hits) == 1 else None


def map_identifiers(sql: str, conn: sqlite3.Connection) -> str:
    """Rewrite the SQL's identifiers onto the database's names (normalized-name matching);
    string literals, keywords, functions and aliases are left alone."""
    names = _schema(conn)
    out = []
    for tok in _TOKEN.findall(sql):
        if tok[:1].isalpha() or tok[:1] == "_":
            mapped = _resolve(tok, names) if tok.upper() not in _KEYWORDS else None
            out.append(f'"{mapped}"' if mapped is not None and mapped.lower() != tok.lower()
                       else tok)
        elif tok[:1] == '"' and len(tok) > 1:
            # Spider writes some string literals in double quotes: keep them literals
            inner = tok[1:-1]
            mapped = names.get(_key(inner))
            out.append(f'"{mapped}"' if mapped is not None else "'" + inner.replace("'", "''") + "'")
        else:
            out.append(tok)
    return "".join(out)


def run_gold(item: QAItem, conn: sqlite3.Connection) -> list[list[Any]]:
    """The gold SQL's rows over `conn` (sqlite3.Error when it cannot run)."""
    sql = map_identifiers(item.gold_sql, conn)
    return [list(r) for r in conn.execute(sql).fetchall()]


def canonical(v: Any) -> Any:
    """A cell's comparable form: numbers as rounded floats, text stripped and lowercased."""
    if _is_number(v):
        f = float(v)
        return round(f, 4)
    if v is None:
        return None
    return str(v).strip().lower()


def same_rows(a: Iterable[Iterable[Any]], b: Iterable[Iterable[Any]]) -> bool:
    """Equal as order-insensitive multisets of rows (cells compared by `canonical`)."""
    ca = Counter(tuple(canonical(x) for x in row) for row in a)
    cb = Counter(tuple(canonical(x) for x in row) for row in b)
    return ca == cb


def reproduce(item: QAItem, org: Organization) -> tuple[bool, str]:
    """Whether the gold SQL over the organization's tables gives the reference rows, and why not."""
    gold = item.gold_rows()
    if gold is None:
        return False, "unanswerable"
    conn = build_database(org)
    try:
        rows = run_gold(item, conn)
    except sqlite3.Error as e:
        return False, f"error: {e}"
    finally:
        conn.close()
    if same_rows(rows, gold):
        return True, ""
    return False, f"rows differ: got {json.dumps(rows[:3], default=str)} want {json.dumps(gold[:3])}"


_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def answer_check(answer: str, item: QAItem) -> bool:
    """Whether an answer text carries the reference: for an unanswerable item, that it says the
    information is not there; otherwise, rows written as a JSON/Python list equal to the reference
    multiset, or else every distinct reference cell appearing in the text (numbers as numbers,
    text case-insensitively)."""
    gold = item.gold_rows()
    if gold is None:
        return bool(_NOT_ENOUGH.search(answer))
    for m in re.finditer(r"\[\s*\[.*?\]\s*\]", answer, re.DOTALL):
        try:
            rows = json.loads(m[0].replace("'", '"'))
        except json.JSONDecodeError:
            continue
        if isinstance(rows, list) and same_rows(rows, gold):
            return True
    if not gold:
        return bool(re.search(r"\b(?:no|none|zero|0)\b", answer, re.IGNORECASE))
    numbers = {canonical(n.replace(",", "")) for n in _NUM.findall(answer)}
    low = answer.lower()
    for cell in {canonical(c) for row in gold for c in row}:
        if cell is None:
            continue
        if isinstance(cell, float):
            if cell not in numbers:
                return False
        elif cell not in low:
            return False
    return True
