"""lmlab.data: the resolver's order, the packaged copies, downloads from a local server, the wheel."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lmlab import data
from lmlab.data import DATASETS, resolve
from lmlab.errors import LmlabError

REPO = Path(__file__).resolve().parents[1]
PJ = DATASETS["peoplejoin-qa"]


@pytest.fixture(autouse=True)
def scratch(monkeypatch, tmp_path) -> Path:
    """A fresh lmlab cache, no dataset variables or mirror from the caller's shell, and no
    proxy between the tests and their local server."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LMLAB_CACHE", str(cache))
    for name in DATASETS:
        monkeypatch.delenv(data.env_var(name), raising=False)
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return cache


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _no_package(monkeypatch) -> None:
    """Act as an install without the packaged copies."""
    monkeypatch.setattr(data, "packaged_dir", lambda ds: None)


# -- nothing reads the development folder beside the checkout -------------------------------------
def test_no_file_under_src_or_tests_names_the_shared_folder():
    # The patterns are built here so that this file does not name them itself.
    shared = "shared"
    patterns = [
        re.compile(re.escape("../" + shared)),
        re.compile(re.escape(shared + "/data")),
        re.compile(r"""["']""" + shared + r"""["']\s*/\s*["']data["']"""),  # a path join
        re.compile(r"""/\s*["']""" + shared + r"""["']"""),  # parent / that name
        re.compile(r"""["']""" + shared + r"""["']\s*,\s*["']data["']"""),  # os.path.join
    ]
    text = {".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".json", ".yaml", ".yml", ".sh"}
    offenders = []
    for top in ("src", "tests"):
        for p in sorted((REPO / top).rglob("*")):
            if p.suffix not in text or not p.is_file() or "__pycache__" in p.parts:
                continue
            for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(),
                                     start=1):
                if any(pat.search(line) for pat in patterns):
                    offenders.append(f"{p.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_check_above_catches_what_it_should(tmp_path):
    shared = "shared"
    bad = f'ROOT = Path(__file__).parents[3].parent / "{shared}" / "data"'
    pat = re.compile(r"""/\s*["']""" + shared + r"""["']""")
    assert pat.search(bad) and not pat.search('preds = {"' + shared + '": 1}')


# -- the registry and the packaged copies ---------------------------------------------------------
def test_every_dataset_is_pinned_and_packaged_with_its_licence():
    licences = {"colpret": {"LICENSE", "LICENSE.bimix-law"}, "peoplejoin-qa": {"DATA_LICENSE.md"}}
    for name, ds in DATASETS.items():
        assert re.fullmatch(r"[0-9a-f]{40}", ds.commit) and "/" in ds.repo and ds.licence
        names = [f.name for f in ds.files]
        assert len(names) == len(set(names)) and all(not n.startswith(("/", "..")) for n in names)
        assert all(re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.size > 0 for f in ds.files)
        folder = data.packaged_dir(ds)
        assert folder is not None, name
        held = {p.name for p in folder.iterdir()}
        assert licences[name] <= held and licences[name] <= set(names)
        assert "PROVENANCE.md" in held
        provenance = folder.joinpath("PROVENANCE.md").read_text(encoding="utf-8")
        assert ds.commit in provenance and ds.repo in provenance
    assert "NOTICE.md" in {p.name for p in data.packaged_dir(PJ).iterdir()}  # Spider attribution
    assert len(PJ.files) == 143 and sum(f.name.startswith("tenant_data_v2/") for f in PJ.files) == 140


def test_the_packaged_copy_is_unpacked_once_checked_and_repaired(scratch):
    first = resolve("peoplejoin-qa")
    assert first.source == "package" and first.sha256 == PJ.sha256
    assert first.path == scratch / "data" / "peoplejoin-qa" / PJ.sha256[:16]
    assert (first.path / "dev.jsonl").is_file() and (first.path / "DATA_LICENSE.md").is_file()
    assert len(list((first.path / "tenant_data_v2").glob("*.json"))) == 140
    assert first.to_dict() == {"name": "peoplejoin-qa", "path": str(first.path),
                               "source": "package", "sha256": PJ.sha256, "files": 143}
    assert resolve("peoplejoin-qa").to_metrics()["data.peoplejoin-qa.source"] == "package"
    stamp = (first.path / "dev.jsonl").stat().st_mtime_ns
    assert resolve("peoplejoin-qa") == first  # already there: not written again
    assert (first.path / "dev.jsonl").stat().st_mtime_ns == stamp
    (first.path / "dev.jsonl").write_text("tampered\n")
    again = resolve("peoplejoin-qa")  # a damaged cache is rebuilt from the package
    assert again == first and data.sha256_file(again.path / "dev.jsonl") == PJ.files[1].sha256
    col = resolve("colpret")
    assert col.source == "package" and (col.path / "compact.csv").stat().st_size == 1486511
    assert sorted(p.name for p in col.path.iterdir()) == ["LICENSE", "LICENSE.bimix-law",
                                                          "compact.csv"]


# -- the order: explicit > env > package > cache > download ---------------------------------------
def test_the_resolver_order(monkeypatch, tmp_path, scratch):
    packaged = resolve("peoplejoin-qa")
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    shutil.copytree(packaged.path, mine)
    shutil.copytree(packaged.path, theirs)
    (theirs / "extra.txt").write_text("one more file\n")
    var = data.env_var("peoplejoin-qa")
    assert var == "LMLAB_DATA_PEOPLEJOIN_QA"
    monkeypatch.setenv(var, str(theirs))
    explicit = resolve("peoplejoin-qa", mine)  # explicit beats the environment
    assert (explicit.source, explicit.path) == ("explicit", mine)
    assert explicit.sha256 == PJ.sha256  # the same files give the same manifest
    env = resolve("peoplejoin-qa")  # the environment beats the package
    assert (env.source, env.path) == ("env", theirs) and env.sha256 != PJ.sha256
    assert resolve("peoplejoin-qa", "").source == "env"  # an empty path is no path
    monkeypatch.delenv(var)
    assert resolve("peoplejoin-qa").source == "package"  # the package beats the cache
    _no_package(monkeypatch)
    cached = resolve("peoplejoin-qa")  # without a package: the cache...
    assert (cached.source, cached.path) == ("cache", packaged.path)
    shutil.rmtree(packaged.path)
    monkeypatch.setenv(data.MIRROR_ENV, f"http://127.0.0.1:{_closed_port()}/")
    with pytest.raises(LmlabError, match="cannot download"):  # ...then the download
        resolve("peoplejoin-qa")


def test_bad_explicit_paths_and_names_are_one_clear_line(tmp_path):
    with pytest.raises(LmlabError, match="unknown dataset 'nope'; known: colpret, peoplejoin-qa"):
        resolve("nope")
    with pytest.raises(LmlabError, match="not found"):
        resolve("peoplejoin-qa", tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LmlabError, match=r"has no dev\.jsonl"):
        resolve("peoplejoin-qa", tmp_path / "empty")
    (tmp_path / "f.jsonl").write_text("{}\n")
    with pytest.raises(LmlabError, match="is a file"):
        resolve("peoplejoin-qa", tmp_path / "f.jsonl")
    table = tmp_path / "mine.csv"  # colpret accepts one table file
    table.write_text("family,model,num_params,tokens,loss\n")
    one = resolve("colpret", table)
    assert one.source == "explicit" and one.path == table and one.files == ("mine.csv",)


# -- downloads from a local server ----------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """`python -m http.server` on loopback, a free port, serving tmp_path/www; yields (root, url)."""
    root = tmp_path / "www"
    root.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
         "--directory", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 43567 (http://...) ..."
        port = re.search(r"port (\d+)", line)
        assert port, f"http.server did not start: {line!r}"
        yield root, f"http://127.0.0.1:{port.group(1)}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _publish(ds: data.Dataset, source: Path, root: Path, prefix: str) -> Path:
    """Lay out `ds`'s files as GitHub's raw server does: root/prefix/<repo>/<commit>/<path>."""
    base = root / prefix / ds.repo / ds.commit
    for f in ds.files:
        out = base / f.upstream
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / f.name, out)
    return base


def test_download_from_the_pinned_commit(monkeypatch, tmp_path, server, capsys):
    root, url = server
    pinned = resolve("peoplejoin-qa")  # the packaged files stand in for the repository's
    shutil.copytree(pinned.path, tmp_path / "pinned")
    shutil.rmtree(tmp_path / "cache")
    _publish(PJ, tmp_path / "pinned", root, "good")
    _no_package(monkeypatch)
    monkeypatch.setenv(data.MIRROR_ENV, url + "good/")
    got = resolve("peoplejoin-qa")
    assert got.source == "download" and got.sha256 == PJ.sha256 and got.path == pinned.path
    assert data._complete(PJ, got.path)
    assert "downloading peoplejoin-qa: 143 files" in capsys.readouterr().err
    assert resolve("peoplejoin-qa").source == "cache"  # the next call finds it there
    assert sorted(p.name for p in (tmp_path / "cache" / "data" / "peoplejoin-qa").iterdir()) == [
        PJ.sha256[:16]]  # no temporary folder left beside it


def test_a_checksum_mismatch_is_refused_and_nothing_is_kept(monkeypatch, tmp_path, server):
    root, url = server
    pinned = resolve("peoplejoin-qa")
    shutil.copytree(pinned.path, tmp_path / "pinned")
    shutil.rmtree(tmp_path / "cache")
    base = _publish(PJ, tmp_path / "pinned", root, "bad")
    last = PJ.files[-1]  # the last file fetched: every other one has arrived by then
    target = base / last.upstream
    target.write_bytes(target.read_bytes().replace(b"a", b"b", 1))  # same size, one byte off
    _no_package(monkeypatch)
    monkeypatch.setenv(data.MIRROR_ENV, url + "bad/")
    with pytest.raises(LmlabError) as e:
        resolve("peoplejoin-qa")
    msg = str(e.value)
    assert "\n" not in msg and last.name in msg and "does not match the pinned file" in msg
    assert "nothing was kept" in msg
    assert _files_under(tmp_path / "cache") == []
    # A server that sends more bytes than pinned is refused the same way.
    target.write_bytes(target.read_bytes() + b"\n" * 100)
    with pytest.raises(LmlabError, match="does not match the pinned file"):
        resolve("peoplejoin-qa")
    assert _files_under(tmp_path / "cache") == []


def test_offline_is_one_clear_line_and_nothing_is_kept(monkeypatch, tmp_path):
    _no_package(monkeypatch)
    monkeypatch.setenv(data.MIRROR_ENV, f"http://127.0.0.1:{_closed_port()}/")
    with pytest.raises(LmlabError) as e:
        resolve("peoplejoin-qa")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("peoplejoin-qa: cannot download http://127.0.0.1:")
    assert "LMLAB_DATA_PEOPLEJOIN_QA" in msg and "--set data=PATH" in msg
    assert _files_under(tmp_path / "cache") == []


def test_a_derived_dataset_without_its_package_says_how_to_get_it(monkeypatch, tmp_path):
    _no_package(monkeypatch)
    with pytest.raises(LmlabError) as e:
        resolve("colpret")
    msg = str(e.value)
    assert "\n" not in msg and "import-colpret" in msg and "LMLAB_DATA_COLPRET" in msg
    assert _files_under(tmp_path / "cache") == []


def test_the_default_url_is_githubs_raw_file_at_the_pinned_commit():
    f = next(f for f in PJ.files if f.name == "selected_test_ids.txt")
    assert PJ.url(f) == ("https://raw.githubusercontent.com/microsoft/peoplejoin/"
                         "8470d73f834b53c7f3b49f83e9a0eb3d349f7454/"
                         "workspace/peoplejoin-qa/experiments/selected_data.txt")


# -- the wheel --------------------------------------------------------------------------------------
def test_the_wheel_holds_the_data_and_its_licences_and_finds_them(tmp_path):
    src = tmp_path / "checkout"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("lmlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for ds in DATASETS.values():
        folder = f"lmlab/datasets/{ds.package}/"
        assert folder + "PROVENANCE.md" in names
        packaged = {n[len(folder):] for n in names if n.startswith(folder)}
        assert any(n.endswith(".gz") for n in packaged), packaged
    assert {"lmlab/datasets/colpret/compact.csv.gz", "lmlab/datasets/colpret/LICENSE",
            "lmlab/datasets/colpret/LICENSE.bimix-law",
            "lmlab/datasets/peoplejoin_qa/peoplejoin-qa.tar.gz",
            "lmlab/datasets/peoplejoin_qa/DATA_LICENSE.md",
            "lmlab/datasets/peoplejoin_qa/NOTICE.md"} <= names
    # Installed (unpacked as pip would), away from this checkout: the resolver finds both copies.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import lmlab.data as d\n"
            "assert d.__file__.startswith(sys.argv[1]), d.__file__\n"
            "for n in d.DATASETS:\n"
            "    s = d.resolve(n); print(n, s.source, s.sha256 == d.DATASETS[n].sha256)")
    # -I: no PYTHONPATH, no current folder on the path; only the unpacked wheel is added.
    r = subprocess.run([sys.executable, "-I", "-c", code, str(site)], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path,
                       env={"LMLAB_CACHE": str(tmp_path / "wc"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["colpret package True", "peoplejoin-qa package True"]
