"""Loaders: validation in one line naming the file/item; organization model; the download pin."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from lmlab.errors import LmlabError
from lmlab.studies.peoplejoin import download as dl
from lmlab.studies.peoplejoin.data import (
    UNANSWERABLE_ANSWER,
    data_dir,
    data_source,
    load_items,
    load_organization,
    load_test_ids,
)


def test_items_and_kinds(items):
    assert [i.kind for i in items] == ["plain", "split", "split+redirection", "unanswerable", "plain"]
    assert items[3].answer == UNANSWERABLE_ANSWER and items[3].gold_rows() is None
    assert items[1].gold_rows() == [[4]]
    assert json.loads(json.dumps(items[2].to_dict())) == json.loads(json.dumps(
        type(items[2]).from_dict(items[2].to_dict()).to_dict()))


def test_organization_directory_unknown_and_redirects(org):
    assert org.requester == "alice"
    d = org.directory(exclude="alice")
    assert "alice" not in d and d["erin"] == "unknown" and d["bob"].startswith("The user")
    assert org.redirects() == {"dave": "erin"}
    assert sorted(org.table_holders()["book"]) == ["bob", "carol"]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("question"), "dev.jsonl:2 (bookshop_1): missing field 'question'"),
    (lambda d: d["datum_attributes"].pop("datum_is_unanswerable"), "dev.jsonl:2 (bookshop_1): datum_attributes"),
    (lambda d: d.update(execution_result="not json"), "dev.jsonl:2 (bookshop_1): execution_result is not JSON"),
])
def test_bad_item_names_line_and_field(data_root, mutate, message):
    lines = (data_root / "dev.jsonl").read_text().splitlines()
    d = json.loads(lines[1])
    mutate(d)
    lines[1] = json.dumps(d)
    (data_root / "dev.jsonl").write_text("\n".join(lines))
    with pytest.raises(LmlabError, match="^" + re.escape(message)):
        load_items(data_root / "dev.jsonl")


def test_bad_organization_and_missing_files(data_root):
    p = data_root / "tenant_data_v2" / "broken.json"
    p.write_text(json.dumps({"tenant_id": "x", "primary_user": {"user_id": "zed"}, "users": [],
                             "user_id_to_documents": {}}))
    with pytest.raises(LmlabError, match=r"broken\.json: the primary user 'zed' is not a member"):
        load_organization(data_root, "tenant_data_v2/broken")
    with pytest.raises(LmlabError, match="no such organization file"):
        load_organization(data_root, "tenant_data_v2/nowhere")
    assert load_test_ids(data_root / "selected_test_ids.txt") == [("bookshop_1", "tenant_data_v2/bookshop")]


def test_data_dir(data_root, monkeypatch, tmp_path):
    monkeypatch.delenv("LMLAB_DATA_PEOPLEJOIN_QA", raising=False)
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "cache"))
    packaged = data_source("")  # no path, no variable: the copy that ships with lmlab
    assert packaged.source == "package" and (packaged.path / "dev.jsonl").is_file()
    assert len(load_items(packaged.path / "dev.jsonl")) == 852
    monkeypatch.setenv("LMLAB_DATA_PEOPLEJOIN_QA", str(data_root))
    assert data_dir("") == data_root and data_source("").source == "env"
    (tmp_path / "empty").mkdir()
    with pytest.raises(LmlabError, match=r"expected a folder holding dev\.jsonl"):
        data_dir(str(tmp_path / "empty"))


def test_manifest_pins_the_release():
    m = dl.manifest()
    assert m["qa"]["commit"].startswith("8470d73") and m["doccreation"]["commit"].startswith("85481c1")
    files = m["qa"]["files"]
    assert len([p for p in files if "tenant_data_v2/" in p]) == 143
    assert "sha256" in files["data/peoplejoin-qa/dev.jsonl"]
    assert "git_blob" in files["data/peoplejoin-qa/test.jsonl"]  # not hashable offline: blob id
    assert len([p for p in m["doccreation"]["files"] if "/tenants/" in p]) == 198


def test_verify_sha256_and_git_blob():
    data = b"hello\n"
    dl.verify(data, {"sha256": hashlib.sha256(data).hexdigest()}, "x")
    dl.verify(data, {"git_blob": "ce013625030ba8dba906f756967f9e9ca394464a"}, "x")  # git hash-object
    with pytest.raises(LmlabError, match="SHA-256"):
        dl.verify(b"other", {"sha256": hashlib.sha256(data).hexdigest()}, "x")
    with pytest.raises(LmlabError, match="git blob"):
        dl.verify(b"other", {"git_blob": "ce013625030ba8dba906f756967f9e9ca394464a"}, "x")


def test_download_offline_fails_in_one_line(tmp_path):
    with pytest.raises(LmlabError, match=r"^cannot download http://127\.0\.0\.1:9/.*needs internet access once$"):
        dl.download("qa-test", tmp_path / "out", base_url="http://127.0.0.1:9/{repo}/{commit}/{path}",
                    timeout=2)
    assert not any((tmp_path / "out").rglob("*.json*"))
    with pytest.raises(LmlabError, match="unknown release part"):
        dl.download("qa-all", tmp_path)  # type: ignore[arg-type]
