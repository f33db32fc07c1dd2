#!/usr/bin/env bash
# Runs, or continues, one of the CALVIN-protocol conditions whose per-chain results are kept in the repository
# (results/calvin/<CONDITION>/: settings.json, chains.jsonl, summary.json, success.png), so that the long runs
# (the first 200 chains of every condition, all 1000 of the shipped one) go on across sessions and machines with
# calvin-eval's --resume: a chain's outcome depends only on the settings and the chain, never on the machine.
#
#   tools/calvin_results.sh CONDITION [N] [calvin-eval options ...]   # up to the first N chains (default 200)
#   tools/calvin_results.sh list                                      # the conditions, chains so far, avg len
#
# CONDITION: SCENE_masked_MASKS_LEVEL or SCENE_raw_LEVEL, e.g. D_masked_lite_paper-large, D_raw_none. SCENE is
# the evaluation scene of the D->D policies (v8), or TRAIN-SCENE for the policies of another split: ABC-D is the
# ABC->D split (policies trained on scenes A, B, C, calvin_abc v3) evaluated in scene D. MASKS is
# lite (lite_v2, the shipped default), litev3 (lite_v3), liteabc (lite_v2_abc: never saw scene D, for ABC-D) or gt
# (ground truth from the simulator's segmentation);
# LEVEL a distraction level (none, paper-large, paper-xlarge, ...). `list` shows the ones kept. Policies and masks
# are pinned by file and name (the shipped D->D v8 and ABC->D v3 policies, lite_v2 / lite_v3), so a later default
# cannot mix into a folder: calvin-eval refuses a folder whose settings.json differs. The folders of the policies
# shipped before (D->D v3, v6 and v7, ABC->D v1 and v2) are kept in results/experiments. Runs in this process
# (--workers 0) on one thread; use --workers N or --address HOST:PORT after N to fan out.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
IVM=${IVM_ROS_BIN:-.venv/bin/ivm-ros}
ROOT=results/calvin
WEIGHTS=ivm_ros/policies/embedded/weights
if [ "${1:-}" = list ] || [ $# -eq 0 ]; then
  for d in "$ROOT"/*/; do
    [ -d "$d" ] || continue
    c=$(basename "$d")
    if [ -f "$d/chains.jsonl" ]; then  # chains so far and their avg len (subtasks completed per chain)
      awk -v c="$c" -F'"completed": ' '{split($2, v, ","); s += v[1]; n++}
        END {printf "%s: %d chains, avg len %.2f\n", c, n, n ? s / n : 0}' "$d/chains.jsonl"
    else
      echo "$c: 0 chains"
    fi
  done
  exit 0
fi
cond=$1
n=${2:-200}
shift $(( $# >= 2 ? 2 : 1 ))
IFS=_ read -r scene policy masks level <<<"$cond"
[ "$policy" = raw ] && { level=$masks${level:+_$level}; masks=none; }  # raw has no MASKS; LEVEL may hold _
unknown() { echo "calvin_results.sh: unknown condition $cond (see: tools/calvin_results.sh list)" >&2; exit 2; }
case "$scene" in
  [ABCD]) policies=calvin_POLICY_v8 ;;
  ABC-D) policies=calvin_abc_POLICY_v3; scene=D ;;
  *) unknown ;;
esac
case "$policy" in
  masked) masking=on ;;
  raw) masking=off ;;
  *) unknown ;;
esac
args=(--masking "$masking" --policy-config "checkpoint=$WEIGHTS/policy_${policies/POLICY/$policy}.msgpack")
case "$policy/$masks" in
  masked/lite) args+=(--model lite --model-config checkpoint=lite_v2) ;;
  masked/litev3) args+=(--model lite --model-config checkpoint=lite_v3) ;;
  masked/liteabc) args+=(--model lite --model-config checkpoint=lite_v2_abc) ;;
  masked/gt) args+=(--model groundtruth) ;;
  raw/none) ;;
  *) unknown ;;
esac
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$IVM" calvin-eval --policy embedded "${args[@]}" --scene "$scene" --distraction "$level" --chains "$n" \
  --workers 0 --gifs 0 --out "$ROOT/$cond" --resume "$@"
