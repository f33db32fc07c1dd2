#!/usr/bin/env bash
# One command for the SimplerEnv WidowX evaluation on a GPU machine (issue 20): all four Bridge tasks x 24 placements,
# masking on and off, spread over Ray workers; the venv is made on the first run.
#
#   tools/simpler_gpu_eval.sh OUT [simpler-eval options ...]
#   tools/simpler_gpu_eval.sh out/simpler_gpu                              # the scripted expert (harness check)
#   tools/simpler_gpu_eval.sh out/simpler_gpu --policy embedded --model groundtruth \
#       --policy-config 'variant=widowx_{masked}'    # the shipped WidowX pair (weights/MODEL_CARD_widowx.md)
#
# Environment: VENV (default .venv_simpler beside this repo's files), MS2 (a ManiSkill2_real2sim checkout; when unset
# and VENV is missing, SimplerEnv is cloned with its submodule into SIMPLER_DIR, default ../SimplerEnv), WORKERS
# (Ray worker processes; default: cores - 1, at most 8), TORCH (torch requirement for the venv; default the CUDA
# build `torch` when nvidia-smi sees a GPU). Without a GPU it renders on software Vulkan when
# /opt/simpler_cpu/env.sh exists (../shared/tools/simpler_cpu), about 20x slower, and says so.
# Options given after OUT are passed to `ivm-ros simpler-eval` and override the defaults below (later wins).
set -euo pipefail
OUT=${1:?usage: tools/simpler_gpu_eval.sh OUT [simpler-eval options ...]}
shift
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$REPO/.venv_simpler}
if nvidia-smi -L >/dev/null 2>&1; then
  echo "simpler_gpu_eval: GPU: $(nvidia-smi -L | head -1)"
  export TORCH=${TORCH:-torch}
elif [ -f /opt/simpler_cpu/env.sh ]; then
  echo "simpler_gpu_eval: no GPU; rendering on software Vulkan (/opt/simpler_cpu): expect ~20x the GPU time" >&2
  # shellcheck disable=SC1091
  source /opt/simpler_cpu/env.sh
else
  echo "simpler_gpu_eval: no GPU (nvidia-smi) and no software-Vulkan recipe (/opt/simpler_cpu/env.sh, see" \
       "../shared/tools/simpler_cpu/README.md): SAPIEN cannot render here" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/ivm-ros" ]; then
  if [ -z "${MS2:-}" ]; then
    SIMPLER_DIR=${SIMPLER_DIR:-$REPO/../SimplerEnv}
    [ -d "$SIMPLER_DIR" ] || git clone --recurse-submodules https://github.com/simpler-env/SimplerEnv "$SIMPLER_DIR"
    MS2=$SIMPLER_DIR/ManiSkill2_real2sim
    "$REPO/tools/simpler_venv.sh" "$VENV" "$MS2" "$SIMPLER_DIR"
  else
    "$REPO/tools/simpler_venv.sh" "$VENV" "$MS2"
  fi
fi
CORES=$(nproc)
WORKERS=${WORKERS:-$(( CORES > 9 ? 8 : (CORES > 1 ? CORES - 1 : 0) ))}
TASKS=widowx_carrot_on_plate,widowx_spoon_on_towel,widowx_stack_cube,widowx_put_eggplant_in_basket
START=$(date +%s)
OMP_NUM_THREADS=1 "$VENV/bin/ivm-ros" simpler-eval --tasks "$TASKS" --episodes 24 --masking both --policy expert \
  --workers "$WORKERS" --gifs 1 --out "$OUT" --resume "$@"
echo "simpler_gpu_eval: done in $(( $(date +%s) - START )) s with $WORKERS workers; results in $OUT" \
     "(summary.json, success.png, gifs/)"
