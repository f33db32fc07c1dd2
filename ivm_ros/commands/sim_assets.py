"""``ivm-ros sim-assets``: where the simulator's CALVIN assets are, and getting them (see ``ivm_ros/assets.py``).

    ivm-ros sim-assets                      # where they are found (or every place searched and how to get them)
    ivm-ros sim-assets --download           # calvin_env + 2 calvin files at the pinned commits, checked (internet)
    ivm-ros sim-assets --archive FILE.tar.gz [--calvin-files DIR]   # the same from files you downloaded
    ivm-ros sim-assets --link FOLDER        # use a copy you already have (a symlink in the per-user folder)
    ivm-ros sim-assets --verify             # check the found folder file by file against the manifest
"""

from __future__ import annotations

import argparse
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ivm_ros import assets


def _fetch(url: str, out: Path) -> Path:
    """Downloads ``url`` to ``out`` with a progress bar."""
    with urllib.request.urlopen(url, timeout=60) as response, out.open("wb") as f:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1]) as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                f.write(block)
                bar.update(len(block))
    return out


def _install(archive: Path, calvin_dir: Path, dest: Path) -> int:
    extra = {name: calvin_dir / Path(name).name for name in assets.CALVIN_FILES}
    absent = [str(p) for p in extra.values() if not p.is_file()]
    if absent:
        print(f"sim-assets: missing {', '.join(absent)} (from {', '.join(assets.CALVIN_FILES.values())})")
        return 1
    try:
        assets.install_archive(archive, dest, extra)
    except (ValueError, FileExistsError, OSError) as exc:
        print(f"sim-assets: not installed: {exc}")
        return 1
    print(f"sim-assets: installed and checked ({len(assets.read_manifest())} files) in {dest}")
    return 0


def _show(verify: bool) -> int:
    try:
        folder = assets.find_calvin_assets()
    except assets.AssetsNotFound as exc:
        print(exc)
        return 1
    print(f"CALVIN assets: {folder}")
    if verify:
        problems = assets.verify(folder, assets.read_manifest())
        for line in problems[:20]:
            print("  " + line)
        print("verified: matches the pinned release" if not problems else f"{len(problems)} file(s) differ")
        return 1 if problems else 0
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros sim-assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--download", action="store_true", help=f"download {assets.ARCHIVE_URL} and 2 calvin files")
    how.add_argument("--archive", type=Path, help="install from a downloaded calvin_env tarball")
    how.add_argument("--link", type=Path, help="point the per-user folder at an existing asset folder")
    parser.add_argument("--calvin-files", type=Path, help="with --archive: folder holding "
                        + " and ".join(Path(n).name for n in assets.CALVIN_FILES) + " (default: beside the archive)")
    parser.add_argument("--verify", action="store_true", help="check the found folder against the manifest")
    args = parser.parse_args(argv)
    dest = assets.user_dir()
    if args.link:
        if lacks := assets.missing(args.link):
            print(f"sim-assets: {args.link} lacks {', '.join(lacks)}")
            return 1
        if dest.exists() or dest.is_symlink():
            print(f"sim-assets: {dest} exists: remove it first (rm {dest}) to point it elsewhere")
            return 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(args.link.resolve(), target_is_directory=True)
        print(f"sim-assets: {dest} -> {args.link.resolve()}")
        return 0
    if args.archive:
        return _install(args.archive, args.calvin_files or args.archive.parent, dest)
    if args.download:
        if dest.exists() or dest.is_symlink():
            print(f"sim-assets: {dest} exists: remove it first (rm -r {dest}) to reinstall")
            return 1
        with tempfile.TemporaryDirectory() as tmp:
            archive = _fetch(assets.ARCHIVE_URL, Path(tmp) / "calvin_env.tar.gz")
            for url in assets.CALVIN_FILES.values():
                _fetch(url, Path(tmp) / url.rsplit("/", 1)[-1])
            return _install(archive, Path(tmp), dest)
    return _show(args.verify)
