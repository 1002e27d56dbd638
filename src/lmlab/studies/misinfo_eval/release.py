"""The release's feed and annotation files, downloaded by the user from a pinned commit.

The repository skgabriel/genai_misinfo has no licence, so lmlab ships nothing from it: a user
who wants the paper's feeds runs ``lmlab misinfo-eval download --out DIR`` (or sets the preset's
`release_dir`), which fetches the two CSVs at commit `COMMIT` and accepts each only when its
SHA-256 matches. Offline, it fails with one line saying what it needs.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from lmlab.errors import LmlabError

REPO = "skgabriel/genai_misinfo"
COMMIT = "95bbf68abeccc38a6b2fae5811bd2b448f37be47"
FILES = {
    "newsfeed_eval_set.csv": "c4e7f324b0474196d4c29f6f3fe971937c12673b416a25654d6c962079fdc479",
    "exp_annot.csv": "afa7289414de72d02b17dfd057bd3ca5d8e2c6a2b6cdee3a49f814752b826b09",
}
FEEDS_FILE, ANNOTATION_FILE = "newsfeed_eval_set.csv", "exp_annot.csv"


def url(name: str, commit: str = COMMIT) -> str:
    """The raw URL of a release file at the pinned commit."""
    return f"https://raw.githubusercontent.com/{REPO}/{commit}/data/{name}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(folder: str | Path) -> dict[str, Path]:
    """The release files present in `folder` whose checksums match (a mismatch is an error)."""
    out = {}
    for name, digest in FILES.items():
        p = Path(folder) / name
        if p.is_file():
            got = sha256(p.read_bytes())
            if got != digest:
                raise LmlabError(f"{p}: SHA-256 {got[:12]}... is not the pinned release's {digest[:12]}...")
            out[name] = p
    return out


def download(folder: str | Path, *, timeout: float = 30.0, opener=urllib.request.urlopen) -> dict[str, Path]:
    """Fetch both files into `folder` (skipping ones already there and valid); checksums enforced."""
    from lmlab.runs import atomic_write_bytes

    folder = Path(folder)
    have = verify(folder) if folder.is_dir() else {}
    for name, digest in FILES.items():
        if name in have:
            continue
        try:
            with opener(url(name), timeout=timeout) as r:
                data = r.read()
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise LmlabError(
                f"cannot download {url(name)} ({e}); this needs internet access, or put the "
                f"release's {name} (commit {COMMIT[:7]}) in {folder} yourself"
            ) from None
        if sha256(data) != digest:
            raise LmlabError(f"{url(name)}: checksum mismatch (got {sha256(data)[:12]}...); not saved")
        atomic_write_bytes(folder / name, data)
        have[name] = folder / name
    return have
