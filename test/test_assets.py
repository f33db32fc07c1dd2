"""Finding the CALVIN assets and installing them from an archive, checked file by file against the manifest."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from ivm_ros import assets

SHARED = Path(__file__).resolve().parents[2] / "shared" / "calvin"


def _tree(root: Path) -> Path:
    """A minimal asset folder holding every REQUIRED entry (one small file each)."""
    for name in assets.REQUIRED:
        path = root / name if name.endswith(".yaml") else root / name / "x.urdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    return root


def test_the_search_order_and_an_explicit_ivm_ros_shared_that_lacks_them(tmp_path, monkeypatch):
    env = {"HOME": str(tmp_path / "home"), "IVM_ROS_SHARED": str(tmp_path / "mine")}
    labels = [label for label, _ in assets.calvin_asset_candidates(env)]
    assert labels == ["$IVM_ROS_SHARED/calvin", "user folder", "install share", "beside the source tree"]
    assert assets.user_dir(env) == tmp_path / "home" / ".local" / "share" / "ivm_ros" / "calvin"
    assert assets.user_dir({"XDG_DATA_HOME": str(tmp_path / "xdg")}) == tmp_path / "xdg" / "ivm_ros" / "calvin"
    with pytest.raises(assets.AssetsNotFound) as info:  # the user's choice is not silently replaced
        assets.find_calvin_assets(env)
    assert "$IVM_ROS_SHARED/calvin" in str(info.value) and "does not exist" in str(info.value)
    assert "ivm-ros sim-assets --download" in str(info.value) and "user folder" not in str(info.value)
    _tree(tmp_path / "mine" / "calvin")
    assert assets.find_calvin_assets(env) == tmp_path / "mine" / "calvin"


def test_the_user_folder_comes_before_the_source_tree(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path)}
    _tree(assets.user_dir(env))
    assert assets.find_calvin_assets(env) == assets.user_dir(env)
    (assets.user_dir(env) / "conf" / "scene" / "x.urdf").unlink()
    (assets.user_dir(env) / "conf" / "scene").rmdir()
    found = assets.find_calvin_assets(env) if SHARED.is_dir() else None  # falls through to ../shared
    assert found is None or found.resolve() == SHARED.resolve()


def _archive(tmp_path: Path, files: dict[str, bytes], name: str = "calvin_env-abc") -> Path:
    src = tmp_path / "src" / name
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    out = tmp_path / "calvin_env.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=name)
    return out


FILES = {"data/a.urdf": b"robot", "conf/scene/s.yaml": b"scene: D", "conf/cameras/c.yaml": b"cam",
         "README.md": b"not an asset"}
MANIFEST = {"data/a.urdf": hashlib.sha256(b"robot").hexdigest(), "conf/scene/s.yaml":
            hashlib.sha256(b"scene: D").hexdigest(), "eval/v.yaml": hashlib.sha256(b"sentences").hexdigest()}


def test_an_archive_that_matches_the_manifest_is_installed_with_the_extra_files(tmp_path):
    archive = _archive(tmp_path, FILES)
    (tmp_path / "v.yaml").write_bytes(b"sentences")
    dest = assets.install_archive(archive, tmp_path / "share" / "calvin", {"eval/v.yaml": tmp_path / "v.yaml"},
                                  MANIFEST)
    assert (dest / "data" / "a.urdf").read_bytes() == b"robot" and (dest / "eval" / "v.yaml").is_file()
    assert not (dest / "README.md").exists()
    assert [p.name for p in dest.parent.iterdir()] == ["calvin"]  # no temporary folder left behind
    with pytest.raises(FileExistsError):
        assets.install_archive(archive, dest, manifest=MANIFEST)


@pytest.mark.parametrize("change", ["corrupt", "missing"])
def test_an_archive_that_differs_installs_nothing(tmp_path, change):
    files = dict(FILES)
    if change == "corrupt":
        files["data/a.urdf"] = b"r0bot"
    else:
        del files["conf/scene/s.yaml"]
    dest = tmp_path / "share" / "calvin"
    with pytest.raises(ValueError, match="does not match the pinned CALVIN assets") as info:
        assets.install_archive(_archive(tmp_path, files), dest, manifest=MANIFEST)
    assert ("SHA-256 differs" if change == "corrupt" else "missing") in str(info.value)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the project's shared CALVIN folder")
def test_the_shipped_manifest_matches_the_pinned_assets_and_names_what_the_sim_needs():
    manifest = assets.read_manifest()
    assert len(manifest) == 227 and all(len(d) == 64 for d in manifest.values())
    assert assets.verify(SHARED, manifest) == []
    assert all(any(name == r or name.startswith(r + "/") for name in manifest) for r in assets.REQUIRED)


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the project's shared CALVIN folder")
def test_sim_assets_installs_a_local_calvin_env_archive_and_then_finds_it(tmp_path, monkeypatch, capsys):
    """The offline path of `ivm-ros sim-assets`: an archive laid out as GitHub's calvin_env tarball (made from the
    shared copy, which is byte-identical to calvin_env at the pinned commit) plus the two calvin files."""
    from ivm_ros.commands import sim_assets

    archive = tmp_path / "dl" / "calvin_env.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for name in ("data", "conf"):
            tar.add(SHARED / name, arcname=f"calvin_env-{assets.CALVIN_ENV_COMMIT}/{name}")
    for name in assets.CALVIN_FILES:
        (archive.parent / Path(name).name).write_bytes((SHARED / name).read_bytes())
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("IVM_ROS_SHARED", raising=False)
    assert sim_assets.main(["--archive", str(archive)]) == 0
    assert assets.find_calvin_assets() == tmp_path / "xdg" / "ivm_ros" / "calvin"
    assert sim_assets.main(["--verify"]) == 0
    assert "matches the pinned release" in capsys.readouterr().out
    assert sim_assets.main(["--archive", str(archive)]) == 1  # already there: refused, nothing touched


def test_without_tarfiles_data_filter_links_and_escapes_are_refused(tmp_path, monkeypatch):
    """Debian 12's Python 3.11.2 has no tarfile filter: the fallback refuses what filter="data" would."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    archive = _archive(tmp_path, FILES)
    (tmp_path / "v.yaml").write_bytes(b"sentences")
    dest = assets.install_archive(archive, tmp_path / "ok" / "calvin", {"eval/v.yaml": tmp_path / "v.yaml"}, MANIFEST)
    assert (dest / "data" / "a.urdf").is_file()
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        link = tarfile.TarInfo("calvin_env-x/data/a.urdf")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(ValueError, match="refusing archive member"):
        assets.install_archive(evil, tmp_path / "bad" / "calvin", manifest=MANIFEST)
    assert not (tmp_path / "bad" / "calvin").exists()


def test_a_plain_colcon_install_finds_the_shared_folder_beside_its_workspace_checkout(tmp_path, monkeypatch):
    """colcon build (no --symlink-install) copies the package into <ws>/install: the finder goes from the install's
    share/ivm_ros to <ws>/src/<checkout>/../shared/calvin, without IVM_ROS_SHARED."""
    ws = tmp_path / "ws"
    share = ws / "install" / "ivm_ros" / "share" / "ivm_ros"
    share.mkdir(parents=True)
    for tree, name in (("ivm_ros", "ivm_ros"), ("other/pkg", "other_pkg")):
        (ws / "src" / tree).mkdir(parents=True)
        (ws / "src" / tree / "package.xml").write_text(f"<package><name>{name}</name></package>")
    monkeypatch.setattr(assets, "share_dir", lambda: share)
    monkeypatch.setattr(assets, "_SOURCE_ROOT", share.parent.parent / "lib" / "site-packages")
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert assets.workspace_trees(share) == [ws / "src" / "ivm_ros"]
    beside = ws / "src" / "shared" / "calvin"
    assert assets.calvin_asset_candidates(env)[-1] == ("beside the workspace's source", beside)
    with pytest.raises(assets.AssetsNotFound, match="beside the workspace's source"):
        assets.find_calvin_assets(env)
    _tree(beside)
    assert assets.find_calvin_assets(env) == beside
    assert assets.workspace_trees(tmp_path / "venv" / "share" / "ivm_ros") == []  # not an install of a workspace


def test_sim_assets_link_points_the_user_folder_at_a_copy_and_refuses_to_replace_one(tmp_path, monkeypatch, capsys):
    from ivm_ros.commands import sim_assets

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("IVM_ROS_SHARED", raising=False)
    assert sim_assets.main(["--link", str(tmp_path / "nothing")]) == 1 and "lacks" in capsys.readouterr().out
    copy = _tree(tmp_path / "copy")
    assert sim_assets.main(["--link", str(copy)]) == 0
    assert assets.find_calvin_assets() == assets.user_dir() and assets.user_dir().resolve() == copy
    assert sim_assets.main(["--link", str(copy)]) == 1 and "exists" in capsys.readouterr().out
    assert sim_assets.main(["--download"]) == 1  # refused before any download: the folder is there
