"""Fetching the parts of the release that do not ship with lmlab, from pinned commits.

`release_manifest.json` (beside this module) lists every file of the two releases at their pinned
commits (QA: microsoft/peoplejoin 8470d73; DocCreation: 85481c1) with its git blob id and, where
the file's bytes were available when the manifest was built, its SHA-256. A downloaded file is
accepted only when its SHA-256 matches; `test.jsonl` and the three largest organizations were not
available to hash, so they are checked against the git blob id of the pinned tree instead (also
content-addressed: sha1 of ``blob <size>\\0`` + bytes). Nothing is imported or read at import time
(the release's registry crashed at import when `test.jsonl` was absent).
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from lmlab.errors import LmlabError
from lmlab.runs import atomic_write_bytes

__all__ = ["PARTS", "download", "manifest", "verify"]

RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
PARTS = ("qa-test", "qa-dev", "doccreation")
Part = Literal["qa-test", "qa-dev", "doccreation"]


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    """The pinned manifest of both releases."""
    return json.loads((Path(__file__).with_name("release_manifest.json")).read_text())


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def verify(data: bytes, entry: dict[str, Any], name: str) -> None:
    """Raise LmlabError unless `data` has the manifest entry's SHA-256 (or git blob id)."""
    if "sha256" in entry:
        got = hashlib.sha256(data).hexdigest()
        if got != entry["sha256"]:
            raise LmlabError(f"{name}: SHA-256 {got[:12]}... does not match the pinned "
                             f"{entry['sha256'][:12]}...")
    elif _git_blob_id(data) != entry["git_blob"]:
        raise LmlabError(f"{name}: content does not match the pinned git blob {entry['git_blob'][:12]}")


def _files(part: Part) -> tuple[str, str, dict[str, dict[str, Any]], str]:
    m = manifest()
    if part == "doccreation":
        rel = m["doccreation"]
        return rel["repo"], rel["commit"], rel["files"], "data/peoplejoin-doc-creation/"
    rel = m["qa"]
    files = dict(rel["files"])
    if part == "qa-dev":
        files = {p: e for p, e in files.items() if not p.endswith("test.jsonl")}
    return rel["repo"], rel["commit"], files, "data/peoplejoin-qa/"


def download(part: Part, dest: str | os.PathLike, *, base_url: str = RAW_URL,
             timeout: float = 30.0) -> Path:
    """Download a part of the release into `dest` (files already there and valid are kept).

    ``qa-test``: every QA file (test.jsonl, dev.jsonl, all 143 organizations, the paper's 500
    selected ids as ``selected_test_ids.txt``); ``qa-dev``: the same without test.jsonl;
    ``doccreation``: the three scenario files and 198 organizations. Offline, or on a checksum
    mismatch, it fails with one line and leaves no partial file.
    """
    if part not in PARTS:
        raise LmlabError(f"unknown release part {part!r}; choose one of {', '.join(PARTS)}")
    repo, commit, files, prefix = _files(part)
    root = Path(dest)
    for path, entry in sorted(files.items()):
        rel = path.removeprefix(prefix)
        if rel.endswith("selected_data.txt"):
            rel = "selected_test_ids.txt"
        target = root / rel
        if target.is_file():
            try:
                verify(target.read_bytes(), entry, str(target))
                continue
            except LmlabError:
                pass  # stale or torn: fetch again
        url = base_url.format(repo=repo, commit=commit, path=path)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                data = r.read()
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise LmlabError(f"cannot download {url} ({reason}); the PeopleJoin {part} data needs "
                             "internet access once") from None
        verify(data, entry, url)
        atomic_write_bytes(target, data)
    return root
