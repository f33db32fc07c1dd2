"""dev.sh on a fresh Debian 12, whose python3 lacks venv/ensurepip until python3-venv is installed: it says what to
run (or installs it as root) instead of failing inside `python3 -m venv`. A fake python3 stands in for Debian's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fake_python3_without_venv(bin_dir: Path) -> None:
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text(f"""#!/bin/sh
case "$*" in *"import venv, ensurepip"*) echo "ModuleNotFoundError: No module named 'ensurepip'" >&2; exit 1;; esac
exec {sys.executable} "$@"
""")
    fake.chmod(0o755)


def _dev_sh(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    _fake_python3_without_venv(tmp_path / "bin")
    full = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
                IVM_ROS_VENV=str(tmp_path / "venv"), IVM_ROS_DEV_UID="1000", **env)
    return subprocess.run(["bash", str(ROOT / "dev.sh"), "test", "--version"], env=full, capture_output=True,
                          text=True, timeout=60)


def test_without_python3_venv_a_user_is_told_the_apt_command_and_nothing_is_made(tmp_path):
    out = _dev_sh(tmp_path)
    assert out.returncode == 1, out.stderr
    assert "run  sudo apt-get install -y python3-venv  then run dev.sh again" in out.stderr
    assert not (tmp_path / "venv").exists()


def test_a_venv_left_without_pip_is_made_again(tmp_path):
    """`python3 -m venv` without ensurepip leaves a venv with a python but no pip: dev.sh removes it."""
    broken = tmp_path / "venv" / "bin"
    broken.mkdir(parents=True)
    (broken / "python").write_text("#!/bin/sh\nexit 1\n")
    (broken / "python").chmod(0o755)
    out = _dev_sh(tmp_path)
    assert "has no pip" in out.stderr and out.returncode == 1
    assert not (tmp_path / "venv").exists()
