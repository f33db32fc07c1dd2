"""Where the simulator's CALVIN assets are, and installing them from calvin_env's pinned release (no ROS, no sim).

The assets (URDFs, meshes, textures and YAML of mees/calvin_env at :data:`CALVIN_ENV_COMMIT`, plus the task
oracle and evaluation sentences of mees/calvin at :data:`CALVIN_COMMIT`; data only, MIT) are searched in order:

1. ``$IVM_ROS_SHARED/calvin`` (the user said so);
2. the per-user folder ``$XDG_DATA_HOME/ivm_ros/calvin`` (``~/.local/share/ivm_ros/calvin``), where
   ``ivm-ros sim-assets --download`` / ``--archive`` install them and ``--link PATH`` points at a copy;
3. the install's ``share/ivm_ros/calvin`` (a packager may put them there);
4. ``<source checkout>/../shared/calvin`` (this project's own layout; also a ``colcon build --symlink-install``);
5. ``<checkout in the workspace's src/>/../shared/calvin``: a plain ``colcon build`` copies the package into
   ``<ws>/install``, so ``__file__`` no longer points into the tree; the workspace is found from the install
   (an ancestor of ``share/ivm_ros`` that has ``src/``) and its checkout by ``src/[*/]*/package.xml`` naming ivm_ros.

Colcon records no source path in the install, so 5. relies on the usual ``<ws>/{src,install}`` layout; the per-user
folder (``--link``) works for any layout and every process of the user.
Each file is checked against the SHA-256 manifest ``ivm_ros/data/calvin_assets.sha256`` (made from the pinned
commits; GitHub's tarballs are not byte-stable, so the unpacked files are checked, not the archive).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ivm_ros.paths import _SOURCE_ROOT, PACKAGE, share_dir

CALVIN_ENV_COMMIT = "797142c588c21e76717268b7b430958dbd13bf48"
CALVIN_COMMIT = "fa03f01f19c65920e18cf37398a9ce859274af76"
ARCHIVE_URL = f"https://github.com/mees/calvin_env/archive/{CALVIN_ENV_COMMIT}.tar.gz"
_RAW = f"https://raw.githubusercontent.com/mees/calvin/{CALVIN_COMMIT}/calvin_models/conf"
#: files of mees/calvin the simulator reads, by their place in the asset folder
CALVIN_FILES = {"eval/new_playtable_tasks.yaml": f"{_RAW}/callbacks/rollout/tasks/new_playtable_tasks.yaml",
                "eval/new_playtable_validation.yaml": f"{_RAW}/annotations/new_playtable_validation.yaml"}
MANIFEST = Path(__file__).resolve().parent / "data" / "calvin_assets.sha256"
#: what a folder must hold to be used
REQUIRED = ("data/calvin_table_D", "data/franka_panda", "data/blocks", "conf/scene", "conf/cameras",
            "eval/new_playtable_validation.yaml")
FIX = ("ivm-ros sim-assets --download (internet: calvin_env's data, checked), --archive FILE (a downloaded "
       f"{ARCHIVE_URL.rsplit('/', 1)[-1]}), or --link FOLDER (a copy you have); or export IVM_ROS_SHARED=<folder "
       "holding calvin/>")


class AssetsNotFound(FileNotFoundError):
    """No candidate folder holds the CALVIN assets; the message lists each place and the fix."""


def user_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The per-user asset folder: ``$XDG_DATA_HOME/ivm_ros/calvin`` (default ``~/.local/share``)."""
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", str(Path.home()))) / ".local" / "share")
    return Path(base) / "ivm_ros" / "calvin"


def calvin_asset_candidates(environ: Mapping[str, str] = os.environ) -> list[tuple[str, Path]]:
    """(label, folder) in search order (see the module docstring)."""
    found = []
    if environ.get("IVM_ROS_SHARED"):
        found.append(("$IVM_ROS_SHARED/calvin", Path(environ["IVM_ROS_SHARED"]) / "calvin"))
    share = share_dir()
    found += [("user folder", user_dir(environ)), ("install share", share / "calvin"),
              ("beside the source tree", _SOURCE_ROOT.parent / "shared" / "calvin")]
    found += [("beside the workspace's source", tree.parent / "shared" / "calvin") for tree in workspace_trees(share)]
    return found


def workspace_trees(share: Path) -> list[Path]:
    """Checkouts of ivm_ros in the src/ of the colcon workspace whose install holds ``share`` (none elsewhere)."""
    for ws in list(share.parents)[:4]:
        src = ws / "src"
        if (ws / "install").is_dir() and src.is_dir() and share.is_relative_to(ws / "install"):
            xmls = sorted([*src.glob("*/package.xml"), *src.glob("*/*/package.xml")])
            return [x.parent for x in xmls if f"<name>{PACKAGE}</name>" in x.read_text(errors="replace")]
    return []


def missing(folder: Path) -> list[str]:
    """The required entries ``folder`` lacks (all of them when it does not exist)."""
    return [name for name in REQUIRED if not (folder / name).exists()]


def find_calvin_assets(environ: Mapping[str, str] = os.environ) -> Path:
    """The first candidate folder that holds the assets; raises :class:`AssetsNotFound` naming every place."""
    tried = []
    for label, folder in calvin_asset_candidates(environ):
        lacks = missing(folder)
        if not lacks:
            return folder
        why = "does not exist" if not folder.exists() else f"lacks {', '.join(lacks)}"
        tried.append(f"{label} {folder} ({why})")
        if label.startswith("$IVM_ROS_SHARED"):
            break  # the user's explicit choice: do not silently use another copy
    raise AssetsNotFound("CALVIN assets not found: " + "; ".join(tried) + ". Fix: " + FIX)


def read_manifest(path: Path = MANIFEST) -> dict[str, str]:
    """``relative path -> sha256`` from a ``sha256sum``-style file."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries[name.strip()] = digest
    return entries


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(folder: Path, manifest: Mapping[str, str]) -> list[str]:
    """Problems of ``folder`` against ``manifest`` (a missing file or a different digest); empty when it matches."""
    problems = []
    for name, digest in manifest.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256(path) != digest:
            problems.append(f"{name}: SHA-256 differs from the pinned release")
    return problems


def _safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extracts regular files and folders that stay inside ``dest``; ValueError for anything else. (tarfile's
    ``filter="data"`` does this from Python 3.11.4; Debian 12 has 3.11.2.)"""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar.getmembers():
        inside = (root / member.name).resolve().is_relative_to(root)
        if not inside or not (member.isfile() or member.isdir()):
            raise ValueError(f"refusing archive member {member.name!r} (outside the folder, a link or a device)")
    tar.extractall(dest)


def _top(root: Path) -> Path:
    """The folder of an unpacked archive that holds data/ and conf/ (GitHub puts them under calvin_env-<commit>/)."""
    for candidate in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if (candidate / "data").is_dir() and (candidate / "conf").is_dir():
            return candidate
    raise ValueError("the archive holds no data/ and conf/ folders: is it mees/calvin_env?")


def install_archive(archive: Path, dest: Path, extra: Mapping[str, Path] | None = None,
                    manifest: Mapping[str, str] | None = None) -> Path:
    """Unpacks calvin_env's ``archive`` (data/, conf/) plus ``extra`` files (asset path -> local file, e.g. the
    two calvin YAML files) into ``dest``, checked against ``manifest`` (default: the shipped one) in a temporary
    folder beside ``dest`` first: on any difference nothing is installed and ValueError lists the problems."""
    manifest = read_manifest() if manifest is None else manifest
    if dest.exists():
        raise FileExistsError(f"{dest} exists: remove it first to reinstall")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".calvin-") as tmp:
        unpacked, staging = Path(tmp) / "unpacked", Path(tmp) / "calvin"
        with tarfile.open(archive) as tar:
            _safe_extract(tar, unpacked)
        top = _top(unpacked)
        staging.mkdir()
        for name in ("data", "conf"):
            shutil.move(str(top / name), str(staging / name))
        for name, source in (extra or {}).items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staging / name)
        wanted = {k: v for k, v in manifest.items() if k.split("/")[0] in ("data", "conf") or k in (extra or {})}
        problems = verify(staging, wanted)
        if problems:
            raise ValueError(f"{archive} does not match the pinned CALVIN assets ({len(problems)} problem(s)): "
                             + "; ".join(problems[:5]))
        staging.rename(dest)
    return dest
