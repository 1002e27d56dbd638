"""A small synthetic organization and items in the release's format (no shared data is read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

USERS = [("alice", "Alice Anastasiou"), ("bob", "Bob Brown"), ("carol", "Carol Chen"),
         ("dave", "Dave Dunn"), ("erin", "Erin Eze"), ("frank", "Frank Fox")]

BOOKS = [{"book id": i, "title": t, "author id": a, "price": p}
         for i, t, a, p in [(1, "Dune", 10, "12.5"), (2, "Emma", 11, "8"), (3, "Ulysses", 12, "15"),
                            (4, "Persuasion", 11, "9")]]
AUTHORS = [{"author id": 10, "name": "Herbert"}, {"author id": 11, "name": "Austen"},
           {"author id": 12, "name": "Joyce"}]
STORES = [{"store id": 1, "city": "Paris"}, {"store id": 2, "city": "Rome"}]


def organization() -> dict:
    doc = lambda url, title, rows: {"url": url, "title": title, "content": json.dumps(rows)}  # noqa: E731
    return {
        "tenant_id": "tenant_data_v2/bookshop",
        "primary_user": {"user_id": "alice", "full_name": "Alice Anastasiou", "email": "alice@company.com"},
        "users": [{"user_id": u, "full_name": n, "email": f"{u}@company.com"} for u, n in USERS],
        "user_id_to_documents": {
            "alice": [doc("bookshop/store", "store", STORES)],
            "bob": [doc("bookshop/book_0", "book", BOOKS[:2])],
            "carol": [doc("bookshop/book_1", "book", BOOKS[2:])],
            "dave": [{"url": "General knowledge/dave", "title": "Try contacting Erin Eze",
                      "content": "erin has relevant information on following topics: author"}],
            "erin": [doc("bookshop/author", "author", AUTHORS)],
            "frank": [],
        },
        "user_id_to_descriptions": {
            "alice": " The user might have information about stores.",
            "bob": " The user might have information about books, titles and prices.",
            "carol": " The user might have information about books and their authors' ids.",
            "dave": " The user might have information about authors and their names.",
            "frank": " The user might have information about the weather.",
        },
        "user_id_to_table_names": {"alice": ["store"], "bob": ["book_0"], "carol": ["book_1"],
                                   "erin": ["author"]},
    }


def item(i: int, question: str, sql: str, result, people, split=False, redirection=False,
         unanswerable=False) -> dict:
    return {
        "datum_id": f"bookshop_{i}", "question": question, "db_id": "bookshop",
        "table_names": ["store", "book", "author"], "gold_sql_query": sql,
        "execution_result": result if isinstance(result, str) else json.dumps(result),
        "tenant_id": "tenant_data_v2/bookshop", "reference_people": people,
        "datum_attributes": {"datum_requires_accessing_subtable_division": split,
                             "datum_requires_redirection_handling": redirection,
                             "datum_is_unanswerable": unanswerable},
    }


ITEMS = [
    item(0, "In which cities are the stores?", "SELECT city FROM store", [["Paris"], ["Rome"]], ["alice"]),
    item(1, "How many books are there?", "SELECT count(*) FROM book", [[4]], ["bob", "carol"], split=True),
    item(2, "What is the name of the author of Emma?",
         "SELECT T2.name FROM book AS T1 JOIN author AS T2 ON T1.authorid = T2.author_id WHERE T1.title = 'Emma'",
         [["Austen"]], ["bob", "carol", "dave", "erin"], split=True, redirection=True),
    item(3, "How much did the Paris store sell?", "SELECT sum(amount) FROM sales",
         "[Unanswerable query] There isn't enough information to answer this query", ["alice"],
         unanswerable=True),
    item(4, "What is the price of Dune?", "SELECT price FROM book WHERE title = 'Dune'", [[12.5]], ["bob"]),
]


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    (tmp_path / "tenant_data_v2").mkdir()
    (tmp_path / "tenant_data_v2" / "bookshop.json").write_text(json.dumps(organization()))
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    (tmp_path / "selected_test_ids.txt").write_text("datum_id, tenant_id\nbookshop_1, tenant_data_v2/bookshop\n")
    return tmp_path


@pytest.fixture
def org(data_root):
    from lmlab.studies.peoplejoin.data import load_organization

    return load_organization(data_root, "tenant_data_v2/bookshop")


@pytest.fixture
def items(data_root):
    from lmlab.studies.peoplejoin.data import load_items

    return load_items(data_root / "dev.jsonl")
