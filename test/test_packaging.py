"""What an install holds (no colcon needed): a wheel built from the committed tree has every module and data
file where setup.py says, and an install of it finds its own weight files.

The wheel is what `pip install` unpacks, and it is built by the same setup.py `packages` / `package_data` /
`data_files` that `colcon build` (setup.py install) uses: a module, weight file or config left out of it is left
out of every install. Built once per run from a copy of the files git would commit (about 5 s)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ivm_ros"
#: Source folder -> the import package it installs as (setup.py's package_dir).
PACKAGES = {"ivm_ros": "ivm_ros", "sim": "ivm_ros_sim"}
#: Files under the package folders that are not meant to be installed, with the reason.
NOT_SHIPPED = {
    "sim/README.md": "developer notes on the source tree (the repository README links it)",
}
#: setup.py data_files: source pattern -> folder under the install prefix.
DATA_FILES = {
    "resource/ivm_ros": "share/ament_index/resource_index/packages",
    "package.xml": f"share/{PACKAGE}",
    "launch/*": f"share/{PACKAGE}/launch",
    "config/*": f"share/{PACKAGE}/config",
}
#: Top-level folders and files the build needs (everything else in the repository stays out of the copy).
BUILD_INPUTS = ("ivm_ros", "sim", "launch", "config", "resource", "package.xml", "setup.py", "setup.cfg",
                "README.md")


def _tree_files() -> list[str]:
    """Repository-relative paths git would commit (tracked, and untracked not ignored), else every file less
    caches: a new data file counts before it is committed, so its missing pattern shows at once."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                             capture_output=True, check=True, timeout=30).stdout.decode()
        files = [f for f in out.split("\0") if f and (ROOT / f).is_file()]
    except (OSError, subprocess.SubprocessError):
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()]
    skip = ("__pycache__", ".egg-info", ".pyc")
    return sorted(f for f in files if not any(s in f for s in skip))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def tree() -> list[str]:
    return _tree_files()


@pytest.fixture(scope="module")
def wheel(tree, tmp_path_factory) -> Path:
    """The wheel `pip wheel` builds from a copy of the tree (the build writes build/ and *.egg-info into its
    source folder: a copy keeps concurrent runs and the checkout out of each other's way)."""
    src = tmp_path_factory.mktemp("wheel_src")
    for rel in tree:
        if rel.split("/", 1)[0] in BUILD_INPUTS:
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    dist = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
           "-w", str(dist), str(src)]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
    (path,) = dist.glob(f"{PACKAGE}-*.whl")
    return path


@pytest.fixture(scope="module")
def contents(wheel) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _installed_path(rel: str) -> str | None:
    """Where a file of a package folder lands in the wheel (None: not under a package folder)."""
    top, _, rest = rel.partition("/")
    return f"{PACKAGES[top]}/{rest}" if top in PACKAGES and rest else None


def _data_dir(contents) -> str:
    (data,) = {n.split("/", 1)[0] for n in contents if n.split("/", 1)[0].endswith(".data")}
    return f"{data}/data"


def test_every_module_is_installed(tree, contents):
    """Every .py file under ivm_ros/ and sim/ (as ivm_ros_sim), byte for byte: a package that setup.py's
    `packages` misses (find_packages() and a folder without __init__.py, a new subpackage) fails here."""
    modules = [rel for rel in tree if rel.endswith(".py") and _installed_path(rel)]
    assert len(modules) > 50, modules
    missing = [rel for rel in modules if _installed_path(rel) not in contents]
    assert not missing, f"modules missing from the wheel (setup.py `packages`): {missing}"
    changed = [rel for rel in modules if contents[_installed_path(rel)] != (ROOT / rel).read_bytes()]
    assert not changed, changed


def test_every_package_data_file_is_installed(tree, contents):
    """Every other file under the package folders (weights, model cards, ...) is installed beside its modules,
    unchanged, unless NOT_SHIPPED says why not: a new data file without a package_data pattern fails here."""
    data = [rel for rel in tree if not rel.endswith(".py") and _installed_path(rel) and rel not in NOT_SHIPPED]
    weights = [rel for rel in data if rel.endswith((".safetensors", ".msgpack"))]
    assert len(weights) >= 3, f"the shipped weights are not in the tree: {weights}"
    missing = [rel for rel in data if _installed_path(rel) not in contents]
    assert not missing, f"data files missing from the wheel (setup.py `package_data`): {missing}"
    for rel in data:
        assert _sha(contents[_installed_path(rel)]) == _sha((ROOT / rel).read_bytes()), rel
    for rel in NOT_SHIPPED:
        assert rel in tree, f"NOT_SHIPPED names {rel}, which is gone: drop it from the list"


def test_data_files_land_in_share(tree, contents):
    """launch files, every config file, package.xml and the ament index marker land under the prefix's share/
    where `ros2 launch` and ament look (setup.py `data_files`)."""
    data = _data_dir(contents)
    expected = {}
    for pattern, dest in DATA_FILES.items():
        folder, _, name = pattern.rpartition("/")
        matched = [rel for rel in tree if rel.rpartition("/")[0] == folder and (name == "*" or rel.endswith(name))]
        assert matched, f"{pattern} matches nothing in the tree"
        expected.update({rel: f"{data}/{dest}/{rel.rpartition('/')[2]}" for rel in matched})
    assert any(rel.endswith(".launch.py") for rel in expected) and "config/fastdds.xml" in expected
    missing = sorted(rel for rel, dest in expected.items() if dest not in contents)
    assert not missing, f"not installed under share/ (setup.py `data_files`): {missing}"
    for rel, dest in expected.items():
        assert contents[dest] == (ROOT / rel).read_bytes(), rel


def test_nothing_else_is_installed(tree, contents):
    """The wheel holds the tree's package files, the data files and metadata, nothing else (no tests, no
    outputs, no stray top-level package such as `sim` or `test` that find_packages() would add)."""
    shipped = {_installed_path(rel) for rel in tree} - {None}
    data = _data_dir(contents)
    extra = sorted(n for n in contents if n not in shipped and not n.startswith((data + "/", f"{PACKAGE}-")))
    assert not extra, extra
    assert {n.split("/", 1)[0] for n in contents if not n.startswith(f"{PACKAGE}-")} == set(PACKAGES.values())


def test_console_scripts_point_into_the_wheel(contents):
    """masking_node, policy_node, sim_node and ivm-ros (and the ivm-ros plug-ins) name modules the wheel holds."""
    (entry,) = [n for n in contents if n.endswith(".dist-info/entry_points.txt")]
    targets, section = {}, None
    for line in contents[entry].decode().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line:
            name, target = (s.strip() for s in line.split("=", 1))
            targets[(section, name)] = target.split(":")[0]
    scripts = {name for section, name in targets if section == "console_scripts"}
    assert {"masking_node", "policy_node", "sim_node", "ivm-ros"} <= scripts, scripts
    for key, module in targets.items():
        path = module.replace(".", "/")
        assert f"{path}.py" in contents or f"{path}/__init__.py" in contents, (key, module)


def test_an_install_finds_its_shipped_weights(wheel, tmp_path):
    """Unpacked as pip installs it and imported from there (not from this checkout), the packages find the
    weight files they ship: the lite predictor's checkpoint and the six embedded policies."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    code = (
        "import sys, pathlib\n"
        "import ivm_ros, ivm_ros_sim\n"
        "from ivm_ros.models.lite import checkpoint as lite\n"
        "from ivm_ros.policies.embedded import checkpoint as policy\n"
        "site = pathlib.Path(sys.argv[1]).resolve()\n"
        "paths = [lite.SHIPPED, *policy.SHIPPED.values()]\n"
        "for m in (ivm_ros, ivm_ros_sim, lite, policy):\n"
        "    assert site in pathlib.Path(m.__file__).resolve().parents, (m.__name__, m.__file__)\n"
        "for p in paths:\n"
        "    assert p.is_file() and site in p.resolve().parents, p\n"
        "print(len(paths))\n"
    )
    # -s: no user site; PYTHONPATH first, so the unpacked wheel shadows the checkout's editable install.
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-s", "-c", code, str(site)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=180)
    from ivm_ros.policies.embedded import checkpoint as policy_checkpoint

    shipped = 1 + len(policy_checkpoint.SHIPPED)  # lite's weights and every shipped policy, as the checkout has them
    assert out.returncode == 0 and out.stdout.strip() == str(shipped), (out.stdout + out.stderr)[-3000:]
