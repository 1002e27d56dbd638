"""The execution check: SQLite tables, identifier mapping, row multisets, answer checking."""

from __future__ import annotations

from lmlab.studies.peoplejoin.sqlexec import (
    answer_check,
    build_database,
    map_identifiers,
    reproduce,
    same_rows,
)


def test_gold_sql_reproduces(org, items):
    for it in items:
        ok, why = reproduce(it, org)
        assert ok == (not it.unanswerable), (it.datum_id, why)


def test_split_tables_merge_and_numeric_strings(org):
    conn = build_database(org)
    assert conn.execute("SELECT count(*) FROM book").fetchone() == (4,)
    assert conn.execute("SELECT title FROM book WHERE price > 10 ORDER BY price").fetchall() == [("Dune",), ("Ulysses",)]
    own = build_database(org, ["bob"])
    assert own.execute("SELECT count(*) FROM book").fetchone() == (2,)


def test_identifier_mapping(org):
    conn = build_database(org)
    sql = map_identifiers("SELECT T1.AuthorId FROM Book AS T1 WHERE T1.title = \"Emma\"", conn)
    assert '"author_id"' in sql and "'Emma'" in sql
    assert conn.execute(sql).fetchall() == [(11,)]


def test_multiset_rows():
    assert same_rows([[1, "a"], [2, "b"]], [[2, "B"], ["1.0", "a"]])
    assert not same_rows([[1], [1]], [[1]])
    assert not same_rows([[1]], [[2]])


def test_answer_check(items):
    assert answer_check("The stores are in Paris and Rome.", items[0])
    assert not answer_check("The store is in Paris.", items[0])
    assert answer_check("There are 4 books in total.", items[1])
    assert not answer_check("There are 2 books.", items[1])
    assert answer_check("Rows: [['Rome'], ['Paris']]", items[0])
    assert answer_check("Sorry, there isn't enough information to answer this.", items[3])
    assert not answer_check("The Paris store sold 300.", items[3])
    assert answer_check("Dune costs 12.50.", items[4])
