"""Build the data that ships inside lmlab (src/lmlab/datasets/) from the project's development copies.

Run once, by a maintainer, from the repository root, when a packaged dataset changes:

    python scripts/build_packaged_data.py [--shared PATH]   # default: ../shared/data

This is the only place in the repository that reads the development-only folder beside the
checkout (`../shared/data`); lmlab itself never does at run time (`lmlab.data` finds the packaged
copies). For each dataset registered in `lmlab.data.DATASETS` it

1. checks every source file against the registry's size and SHA-256 (a file that differs stops the
   script, which prints the registry lines to paste into lmlab/data.py if the change is wanted);
2. writes the compressed copy: `colpret/compact.csv.gz` and `peoplejoin_qa/peoplejoin-qa.tar.gz`,
   byte-for-byte reproducible (no timestamps, owners or modes from this machine);
3. copies the licences as plain files and writes PROVENANCE.md (source repository, pinned commit,
   SHA-256 of each source file, how the data was normalized) and, for PeopleJoin, NOTICE.md (the
   Spider attribution).

Then it unpacks what it wrote through `lmlab.data` and checks every file again.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import shutil
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from lmlab import data  # noqa: E402

OUT = REPO / "src" / "lmlab" / "datasets"

# The upstream files the ColPret compact table was rebuilt from, with their SHA-256 at the pinned
# commit (checked against a clone of IBM/ColPret at 16f23bb).
COLPRET_SOURCES = {
    "aggregated_eval/K2.csv": "2d059ca62595ff3d42a1c23a277344c685576b3da4d8e752ec944bf5b870dc39",
    "aggregated_eval/datablations_code_losses.csv":
        "6e93a1d6842c0699f0492450e433733f706f3c7db6a4385d4c571f6b4aaf257e",
    "aggregated_eval/datablations_contour_losses.csv":
        "1241bdf3732b4f65d455c796951dce7b18b898d64709f86013914573035f8a5b",
    "aggregated_eval/datablations_losses.csv":
        "b3c448c2cd1a17128e06ee3120a9c377c4e2bf649e09b2446db59f98ef957b48",
    "aggregated_eval/llm360Mamba3B.csv":
        "58e7cc9a916f5a96bec2d6c18c2f3fd5e364184418d8fe1af519a1b0f7a9e6bb",
    "aggregated_eval/olmo.csv": "008a3a0ff6a6f0832ecbe6498e1720f17864f23ffda4a9ce3239bf2ceec0ad8a",
    "aggregated_eval/opt_trajectories.csv":
        "c3a53ccc7a412f0caff4179ce484acf1c2aab36b25677473658f094362449ff5",
    "aggregated_eval/revisiting_lang.csv":
        "63c346db00a66b692e1ea9a0f71a2f2b267e55f74be5b863a92e199dffbf0983",
    "aggregated_eval/t5_pile.csv":
        "2d290d98eac37d8abd6b967c20f330b553b459139f02620a96893c00facc2da1",
    "raw_data/bimix-law/Pile/ppls.pkl":
        "73df7c4af2dcead818933ed37586806e250e510702946e792cc64f00bb8c04f4",
    "raw_data/bimix-law/SlimPajama/ppls.pkl":
        "7537a6da0cbab59a8d4c0cc7b207e082aae6a10db44fdfe122b5a849d2f8926b",
    "raw_data/redPajama/2.4B.csv":
        "04b3c24889a84751905cfee87d32f84a2829b554a2a0444cf1b1738bc4f7109f",
    "raw_data/redPajama/6.7B.csv":
        "018e2524de1f4c3d1d30797708c96e918890adc42f8009df133af1ef8dacc292",
}

SPIDER_NOTICE = """\
# Notice: Spider

The organizations of PeopleJoin-QA (`tenant_data_v2/*.json`, and the tables the questions of
`dev.jsonl` are asked about) are derived from the Spider text-to-SQL benchmark:

> Tao Yu, Rui Zhang, Kai Yang, Michihiro Yasunaga, Dongxu Wang, Zifan Li, James Ma, Irene Li,
> Qingning Yao, Shanelle Roman, Zilin Zhang and Dragomir Radev. *Spider: A Large-Scale
> Human-Labeled Dataset for Complex and Cross-Domain Semantic Parsing and Text-to-SQL Task.*
> EMNLP 2018. https://yale-lily.github.io/spider

Spider is distributed under the Creative Commons Attribution-ShareAlike 4.0 International licence
(CC BY-SA 4.0, https://creativecommons.org/licenses/by-sa/4.0/). The PeopleJoin data itself is
under the Community Data License Agreement - Permissive 2.0, whose text is in `DATA_LICENSE.md`.
Both travel with the data.
"""


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def check_sources(ds: data.Dataset, root: Path) -> dict[str, bytes]:
    """Every file of `ds` under `root`, checked against the registry; exit with a clear message if
    one differs."""
    out, bad = {}, []
    for f in ds.files:
        p = root / f.name
        raw = p.read_bytes() if p.is_file() else b""
        if len(raw) != f.size or sha256(raw) != f.sha256:
            bad.append(f.name)
        out[f.name] = raw
    if bad:
        lines = "\n".join(f"{sha256(out[f.name])} {len(out[f.name]):>7} {f.name}"
                          for f in ds.files)
        sys.exit(f"{ds.name}: {len(bad)} file(s) differ from lmlab/data.py's table "
                 f"(first: {bad[0]}). If the change is wanted, paste these lines into the "
                 f"table and run again:\n{lines}")
    return out


def gzip_bytes(raw: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as g:
        g.write(raw)
    return buf.getvalue()


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A reproducible .tar.gz of `files` (sorted, no timestamps, owners or modes of this machine)."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip_bytes(tar_buf.getvalue())


def fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def table(rows: list[tuple[str, str]], head: tuple[str, str]) -> str:
    return "\n".join([f"| {head[0]} | {head[1]} |", "|---|---|",
                      *(f"| `{a}` | `{b}` |" for a, b in rows)])


def build_colpret(shared: Path) -> None:
    ds = data.DATASETS["colpret"]
    files = check_sources(ds, shared / "colpret")
    out = fresh(OUT / ds.package)
    (out / "compact.csv.gz").write_bytes(gzip_bytes(files["compact.csv"]))
    for name in ("LICENSE", "LICENSE.bimix-law"):
        (out / name).write_bytes(files[name])
    readme = (shared / "colpret" / "README.md").read_text(encoding="utf-8")
    readme = "\n".join(("#" + line) if line.startswith("#") else line
                       for line in readme.splitlines())
    csv_ = files["compact.csv"]
    (out / "PROVENANCE.md").write_text(f"""\
# Provenance: the ColPret compact table

- **Source repository:** https://github.com/{ds.repo}, pinned commit `{ds.commit}`
  (27 Jan 2025, "following git issue").
- **Paper:** Leshem Choshen, Yang Zhang, Jacob Andreas, *A Hitchhiker's Guide to Scaling Law
  Estimation*, arXiv:2410.11840 (2024).
- **Licence:** MIT, "Copyright (c) 2024 International Business Machines" (`LICENSE`, copied from
  the repository). The `bimix` rows come from `raw_data/bimix-law/`, under Apache-2.0
  (`LICENSE.bimix-law`, copied from `raw_data/bimix-law/LICENSE`). The measurements belong to the
  papers and projects listed below, which keep their own terms.
- **Files here:** `compact.csv.gz`, a gzip of `compact.csv` ({len(csv_)} bytes, SHA-256
  `{sha256(csv_)}`), and the two licences. `lmlab.data.resolve("colpret")` unpacks them once into
  the lmlab cache and checks each file's SHA-256 against the table in `lmlab/data.py`.
- **Built by** `scripts/build_packaged_data.py`. The table was rebuilt from the repository's
  files by reimplementing its loader and its `perf` normalisation (no code of the repository is
  included); `lmlab scaling-laws import-colpret` rebuilds all its sources but `bimix` from the
  pinned commit.

## Source files (SHA-256 at the pinned commit)

{table(sorted(COLPRET_SOURCES.items()), ("file in IBM/ColPret", "SHA-256"))}

## How the table was built and normalized

{readme}
""", encoding="utf-8")


def build_peoplejoin(shared: Path) -> None:
    ds = data.DATASETS["peoplejoin-qa"]
    files = check_sources(ds, shared / "peoplejoin-qa")
    out = fresh(OUT / ds.package)
    plain = {"DATA_LICENSE.md"}
    (out / ds.archive).write_bytes(tar_gz({k: v for k, v in files.items() if k not in plain}))
    (out / "DATA_LICENSE.md").write_bytes(files["DATA_LICENSE.md"])
    (out / "NOTICE.md").write_text(SPIDER_NOTICE, encoding="utf-8")
    tenants = sorted(f for f in files if f.startswith("tenant_data_v2/"))
    dev_items = files["dev.jsonl"].count(b"\n")
    test_ids = sum(1 for line in files["selected_test_ids.txt"].splitlines() if line.strip())
    rows = [(f.name, f.upstream or "", f.sha256) for f in ds.files]
    listing = "\n".join(["| file here | file in the repository | SHA-256 |", "|---|---|---|",
                         *(f"| `{a}` | `{b}` | `{c}` |" for a, b, c in rows)])
    (out / "PROVENANCE.md").write_text(f"""\
# Provenance: PeopleJoin-QA

- **Source repository:** https://github.com/{ds.repo}, pinned commit `{ds.commit}`
  (17 Feb 2025, "Merge branch 'u/harsh/code-data-release'").
- **Paper:** Harsh Jhamtani, Jacob Andreas, Benjamin Van Durme, *PeopleJoin: Benchmarking
  LM-Mediated Collaborative Problem Solving* (arXiv:2502.12328, 2025).
- **Licence:** Community Data License Agreement - Permissive 2.0 (`DATA_LICENSE.md`, copied from
  the repository; it must travel with the data). The organizations derive from Spider
  (CC BY-SA 4.0): see `NOTICE.md` for the attribution.
- **Normalization:** none. Every file is byte-identical to the repository's at the pinned commit
  (checked by SHA-256 below). One file is renamed: the repository's
  `workspace/peoplejoin-qa/experiments/selected_data.txt` is `selected_test_ids.txt` here.
- **Contents:** `dev.jsonl` ({dev_items} development items), `selected_test_ids.txt` (the
  {test_ids} test items the paper evaluates, as `datum_id, tenant_id`), and
  `tenant_data_v2/<db>.json` ({len(tenants)} organizations, one per Spider database).
- **Not included:** `data/peoplejoin-qa/test.jsonl` and the organizations `bike_1`, `college_2`
  and `flight_4` (the copy this was built from left out files of 4 MiB or more).
- **Files here:** `{ds.archive}` (a reproducible tar.gz of every file but the licence) and
  `DATA_LICENSE.md`. `lmlab.data.resolve("peoplejoin-qa")` unpacks them once into the lmlab cache
  and checks each file's SHA-256 against the table in `lmlab/data.py`; it can also download them
  from the pinned commit.
- **Built by** `scripts/build_packaged_data.py`.

## Files (SHA-256, identical here and in the repository)

{listing}
""", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data",
                        help="the development copies (default: ../shared/data beside the checkout)")
    args = parser.parse_args()
    build_colpret(args.shared)
    build_peoplejoin(args.shared)
    # Unpack what was written, through the resolver, into a scratch cache: every file checked.
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        os.environ["LMLAB_CACHE"] = cache
        for name, ds in data.DATASETS.items():
            os.environ.pop(data.env_var(name), None)
            src = data.resolve(name)
            assert src.source == "package" and src.sha256 == ds.sha256, src
            size = sum(p.stat().st_size for p in (OUT / ds.package).iterdir())
            print(f"{name}: {len(ds.files)} files, {ds.size / 1e6:.2f} MB unpacked, "
                  f"{size / 1e6:.2f} MB packaged in src/lmlab/datasets/{ds.package}/")


if __name__ == "__main__":
    main()
