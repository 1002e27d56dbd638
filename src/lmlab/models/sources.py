"""Where a catalog model's GGUF bytes come from, and the one gate they all pass: size + SHA-256.

Sources (see `lmlab.models.embedded` for the order they are tried in):

* **transport wheels**: PyPI distributions that carry the file in chunks. They are located
  through their installed file lists (`importlib.metadata`), never imported (their ``__init__``
  is not ours to run): chunk k is the ``data/*.bin`` file of distribution k.
* **the Hugging Face hub**: the official GGUF repository, from the local hub cache or, when the
  hub is reachable, downloaded (`huggingface_hub`).

`assemble` concatenates chunks in order into a temporary file beside the destination while it
streams the SHA-256, and renames it into place only when size and checksum match; otherwise it
deletes the temporary file and raises one `LmlabError` line. Nothing unverified is ever left at
the destination.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lmlab.errors import LmlabError
from lmlab.models.catalog import ModelCard, Transport

Progress = Callable[[int, int], None]  # (bytes done, bytes total)
BLOCK = 1 << 20


@dataclass
class Chunks:
    """What was found of a transport: the chunk files in order, and what is missing or wrong."""

    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # distributions not installed
    problems: list[str] = field(default_factory=list)  # installed but unusable (version, files)

    @property
    def complete(self) -> bool:
        """Whether every chunk was found."""
        return not self.missing and not self.problems and bool(self.files)

    @property
    def size(self) -> int:
        """The chunks' total size in bytes (of those found)."""
        return sum(f.stat().st_size for f in self.files)

    def describe(self) -> str:
        """One line: what is missing or wrong (empty when complete)."""
        parts = []
        if self.missing:
            parts.append(f"not installed: {_ranges(self.missing)}")
        parts.extend(self.problems)
        return "; ".join(parts)


def _ranges(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"


def _distribution(name: str, path: Sequence[str | os.PathLike] | None) -> md.Distribution | None:
    """The installed distribution `name` (searching `path` instead of sys.path when given)."""
    kwargs: dict = {"name": name}
    if path is not None:
        kwargs["path"] = [os.fspath(p) for p in path]
    return next(iter(md.distributions(**kwargs)), None)


def locate_chunks(transport: Transport, path: Sequence[str | os.PathLike] | None = None) -> Chunks:
    """The chunk files of `transport`'s installed wheels, in order, without importing anything.

    `path` replaces ``sys.path`` as the places to look for installed distributions (tests point
    it at a folder of fake ``*.dist-info``). A wheel of another version, or with no single
    ``data/*.bin`` file in its file list, is reported in `Chunks.problems`.
    """
    found = Chunks()
    for name in transport.distributions:
        dist = _distribution(name, path)
        if dist is None:
            found.missing.append(name)
            continue
        if dist.version != transport.version:
            found.problems.append(f"{name} is version {dist.version}, not {transport.version}")
            continue
        if transport.member is not None:
            bins = [f for f in (dist.files or []) if f.name == transport.member]
            wanted = transport.member
        else:
            bins = [f for f in (dist.files or []) if f.suffix == ".bin" and f.parent.name == "data"]
            wanted = "data/*.bin"
        if len(bins) != 1:
            found.problems.append(f"{name} lists {len(bins)} {wanted} files, not 1")
            continue
        file = Path(str(dist.locate_file(bins[0])))
        if not file.is_file():
            found.problems.append(f"{name}'s {bins[0]} is missing on disk")
            continue
        found.files.append(file)
    return found


def _fmt_size(n: int) -> str:
    return f"{n:,} bytes"


def assemble(
    chunks: Sequence[Path],
    dest: Path,
    *,
    size: int,
    sha256: str,
    label: str,
    progress: Progress | None = None,
) -> Path:
    """Concatenate `chunks` into `dest`, accepted only if the result has `size` bytes and `sha256`.

    The bytes go to a temporary file beside `dest` while their SHA-256 is computed; on a match it
    is renamed to `dest`, otherwise deleted, and one `LmlabError` line (naming `label`, expected
    and found values) is raised. A total size that cannot match fails before reading anything.
    """
    total = sum(Path(c).stat().st_size for c in chunks)
    if total != size:
        raise LmlabError(
            f"{label}: the parts hold {_fmt_size(total)}, the official file has {_fmt_size(size)}; "
            "refusing them (nothing cached)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    done = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as src:
                    for block in iter(lambda src=src: src.read(BLOCK), b""):
                        h.update(block)
                        out.write(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, total)
        got = h.hexdigest()
        if done != size or got != sha256.lower():
            raise LmlabError(
                f"{label}: checksum mismatch, SHA-256 {got} ({_fmt_size(done)}) where the official "
                f"file has {sha256} ({_fmt_size(size)}); refusing it (nothing cached)"
            )
        tmp.chmod(0o644)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


# -- the Hugging Face hub -----------------------------------------------------------------------
HUB_PROBE_TIMEOUT_S = 3.0


def hub_offline() -> bool:
    """Whether the user switched the hub off (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the hub endpoint (``HF_ENDPOINT``, default huggingface.co) answers a TCP connect.

    A quick probe, so that an offline machine fails in seconds instead of after the hub
    client's retries.
    """
    if hub_offline():
        return False
    parts = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = parts.hostname or "huggingface.co"
    port = parts.port or (80 if parts.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_cached(card: ModelCard) -> Path | None:
    """The card's GGUF in the local Hugging Face hub cache, if it is there (no network)."""
    if card.hub_repo is None:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(card.hub_repo, card.file, revision=card.revision or None)
    except (OSError, ValueError):
        return None
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def hub_download(card: ModelCard) -> Path:
    """Download the card's GGUF from the hub into the hub cache; unverified (see `assemble`).

    Raises one `LmlabError` line when the hub is switched off or unreachable, or the download
    fails.
    """
    if card.hub_repo is None:
        raise LmlabError(f"{card.id} has no hub source")
    if not hub_reachable():
        why = "switched off (HF_HUB_OFFLINE)" if hub_offline() else "unreachable (offline?)"
        raise LmlabError(f"the Hugging Face hub is {why}: cannot download {card.hub_repo}/{card.file}")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise LmlabError("downloading from the hub needs huggingface_hub (pip install 'lmlab[hf]')") from None
    try:
        return Path(hf_hub_download(card.hub_repo, card.file, revision=card.revision or None))
    except (OSError, ValueError) as e:
        raise LmlabError(
            f"cannot download {card.hub_repo}/{card.file}: {' '.join(str(e).split())}"
        ) from None
