#!/usr/bin/env bash
# A Python 3.11 venv that runs SimplerEnv *and* this package (simpler_node, `ivm-ros simpler-eval`, the expert).
#   tools/simpler_venv.sh VENV MANISKILL2_REAL2SIM_DIR [SIMPLERENV_DIR]
# SimplerEnv and ManiSkill2_real2sim are not on PyPI: clone simpler-env/SimplerEnv with its ManiSkill2_real2sim
# submodule (or fetch both) and give their folders; they are installed editable, never copied into this repo.
# SAPIEN 2.2 needs numpy < 2, so everything is installed under that constraint (pip then picks a jax that runs
# on it). On a machine without a GPU, set up software Vulkan first (../shared/tools/simpler_cpu/README.md) and
# `source /opt/simpler_cpu/env.sh` before running anything from the venv. TORCH (default torch==2.13.0) picks the torch requirement: a CUDA
# machine can set TORCH=torch to take the default CUDA build. Checked on this machine family: a fresh venv from the
# fetched ManiSkill2_real2sim, then `simpler-eval --policy expert` on the carrot task: success (install ~30 min).
set -euo pipefail
VENV=${1:?usage: tools/simpler_venv.sh VENV MANISKILL2_REAL2SIM_DIR [SIMPLERENV_DIR]}
MS2=${2:?usage: tools/simpler_venv.sh VENV MANISKILL2_REAL2SIM_DIR [SIMPLERENV_DIR]}
SIMPLER=${3:-}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -f "$MS2/setup.py" ] || [ -f "$MS2/pyproject.toml" ] || { echo "$MS2: not a ManiSkill2_real2sim checkout" >&2; exit 2; }
python3.11 -m venv "$VENV"
PY="$VENV/bin/python"
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
printf 'numpy<2\nsetuptools<81\n' >"$CONSTRAINTS"   # SAPIEN 2.2 imports pkg_resources (gone from setuptools 81)
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q -c "$CONSTRAINTS" setuptools sapien==2.2.2 gymnasium==0.29.1 scipy transforms3d opencv-python-headless \
  trimesh imageio imageio-ffmpeg h5py rtree ruckig mediapy tqdm "${TORCH:-torch==2.13.0}"
"$PY" -m pip install -q --no-deps -e "$MS2"
if [ -n "$SIMPLER" ]; then "$PY" -m pip install -q --no-deps -e "$SIMPLER"; fi
"$PY" -m pip install -q -c "$CONSTRAINTS" -e "$REPO[ros,sim,models,policy]"
"$PY" - <<'CHECK'
import numpy, sapien, mani_skill2_real2sim, ivm_ros, ivm_ros_sim.simpler.env  # noqa: F401
assert int(numpy.__version__.split(".")[0]) < 2, numpy.__version__
print(f"ready: numpy {numpy.__version__}, sapien {sapien.__version__}")
CHECK
echo "run: $VENV/bin/ivm-ros simpler-eval --policy expert --episodes 24   (after sourcing the Vulkan env on a CPU machine)"
