#!/usr/bin/env bash
# One entry point for a fresh Debian 12 + Python 3.11 machine (no ROS install needed).
#   ./dev.sh demo            set up .venv when missing or stale, then run the main job (`ivm-ros demo`)
#   ./dev.sh test [ARGS]     set up .venv, then run the test suite (pytest ARGS)
#   ./dev.sh mutate [MODULE] set up .venv, then mutation-test MODULE (tools/mutation.py; no MODULE: the list)
#   ./dev.sh <cmd> [ARGS]    set up .venv, then run `ivm-ros <cmd> ARGS` (bench, mask, ...)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
VENV=${IVM_ROS_VENV:-.venv}
PY=$VENV/bin/python

# A fresh Debian 12 has python3 3.11 but no venv/ensurepip until the python3-venv package is installed.
need_python() {
  if ! command -v python3 >/dev/null 2>&1; then
    echo "[dev.sh] python3 is missing: run  sudo apt-get install -y python3 python3-venv" >&2
    return 1
  fi
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "[dev.sh] python3 is $(python3 -V 2>&1 | cut -d' ' -f2); ivm_ros needs 3.10 or newer (Debian 12: 3.11)" >&2
    return 1
  fi
  python3 -c 'import venv, ensurepip' 2>/dev/null && return 0
  if [ "${IVM_ROS_DEV_UID:-$(id -u)}" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[dev.sh] python3 has no venv/ensurepip: installing python3-venv (apt-get, as root)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    python3 -c 'import venv, ensurepip' && return 0
  fi
  echo "[dev.sh] python3 has no venv/ensurepip: run  sudo apt-get install -y python3-venv  then run dev.sh again" >&2
  return 1
}

if [ -x "$PY" ] && ! "$PY" -m pip --version >/dev/null 2>&1; then
  echo "[dev.sh] $VENV has no pip (made before python3-venv was installed?): making it again" >&2
  rm -rf "$VENV"
fi
if [ ! -x "$PY" ]; then
  need_python || exit 1
  echo "[dev.sh] creating virtualenv $VENV" >&2
  python3 -m venv "$VENV"
fi

# Reinstall only when the install recipe changed.
want=$(cat setup.py setup.cfg dev.sh | sha256sum | cut -c1-16)
stamp=$VENV/.ivm_ros_install_stamp
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[dev.sh] installing ivm_ros and its dependencies into $VENV (about 2 minutes the first time)" >&2
  "$PY" -m pip install -q --upgrade pip
  # torch first and pinned: this machine family has a local CPU wheel of 2.13.0; an unpinned `torch`
  # pulled in by a dependency would download several GB of CUDA packages instead.
  "$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0"
  "$PY" -m pip install -q -e ".[ros,sim,models,policy,viewer,test]"
  echo "$want" >"$stamp"
fi

cmd=${1:-demo}
[ $# -gt 0 ] && shift
case "$cmd" in
  test) exec "$PY" -m pytest "$@" ;;
  mutate) exec "$PY" tools/mutation.py "$@" ;;
  *) exec "$VENV/bin/ivm-ros" "$cmd" "$@" ;;
esac
