"""Makes the (start, end) state pairs for the task-oracle fidelity test from OUR simulator (project venv).

Stage 1 of 2; stage 2 (``record_oracle.py``, in the official calvin_env venv) adds the official verdicts.
Exact command (from the repository root):

    OMP_NUM_THREADS=1 nice .venv/bin/python tools/calvin_official/make_oracle_pairs.py \
        --out /work/calvin_official/oracle/pairs.json

A state is ``robot_obs`` (15,), ``scene_obs`` (24,) and ``block_vel`` (block -> 6 numbers: linear m/s then
angular rad/s), rounded to 1e-6. Pairs come from three sources:

* ``expert``: our scripted expert on every one of the 34 tasks (one seed), run to the end of its plan (not
  stopped at the first success); the start paired with the state at 25/50/75/100 % of the plan and with up to
  four states where some block's contacts changed (grasps, releases, landings, pushes);
* ``chain``: official chain start states (../shared/calvin/eval/eval_sequences.jsonl: the first chain for each
  distinct first subtask) with our expert doing that subtask from there (``reset_to_state`` +
  ``begin_subtask``), start with middle and end;
* ``edge``: hand-made variants of those states for the rules where oracles differ (rotated and moved 12 cm,
  rotated while carried, stacked without a grasp, stack/unstack with fast blocks, place with the held block
  touching another block, lift with the lifted block touching another block, lights toggled).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pybullet as p
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.expert import Expert
from ivm_ros_sim.calvin.scene import BLOCKS, shared_dir

Pair = dict


def capture(env: CalvinSceneEnv) -> dict:
    """The state as the oracle data stores it."""
    s = env.scene
    vel = {b: [round(float(v), 6) for v in np.concatenate(p.getBaseVelocity(s.blocks[b], physicsClientId=s.client))]
           for b in BLOCKS}
    return {"robot_obs": [round(float(v), 6) for v in s.robot_obs()],
            "scene_obs": [round(float(v), 6) for v in s.scene_obs()], "block_vel": vel}


def _contact_key(env: CalvinSceneEnv) -> tuple:
    st = env.state()
    return tuple(tuple(sorted(st.contacts[b])) for b in BLOCKS)


def run_plan(env: CalvinSceneEnv, task: str, max_steps: int = 360) -> tuple[list[dict], list[int]]:
    """Runs the expert's whole plan from the current state: every step's state (with our contacts under
    ``"_contacts"``, dropped before saving), and the steps where some block's contacts changed."""
    states, changes, last = [], [], _contact_key(env)
    for i, a in enumerate(Expert(env).plan(task)):
        if i >= max_steps:
            break
        env.apply_action(np.asarray(a, dtype=np.float64))
        key = _contact_key(env)
        states.append(capture(env) | {"_contacts": dict(zip(BLOCKS, key))})
        if key != last:
            changes.append(i)
        last = key
    return states, changes


def _checkpoints(n: int, changes: list[int], extra: int = 4) -> list[int]:
    picks = {max(0, int(round(f * n)) - 1) for f in (0.25, 0.5, 0.75, 1.0)}
    if changes:
        picks |= {changes[int(k)] for k in np.linspace(0, len(changes) - 1, min(extra, len(changes)))}
    return sorted(picks)


def expert_pairs(env: CalvinSceneEnv, seed: int) -> list[Pair]:
    pairs = []
    for task in T.all_tasks():
        env.reset(seed=seed, task=task)
        start = capture(env)
        states, changes = run_plan(env, task)
        for k in _checkpoints(len(states), changes):
            pairs.append({"name": f"expert/{task}/s{seed}/step{k + 1}", "start": start, "end": states[k]})
    return pairs


def first_of_each_subtask() -> list[int]:
    """Indices of the first official chain for each distinct first subtask."""
    lines = (shared_dir() / "eval/eval_sequences.jsonl").read_text().splitlines()
    first: dict[str, int] = {}
    for i, line in enumerate(lines):
        first.setdefault(json.loads(line)["subtasks"][0], i)
    return sorted(first.values())


def chain_pairs(env: CalvinSceneEnv, chains: list[int]) -> list[Pair]:
    lines = (shared_dir() / "eval/eval_sequences.jsonl").read_text().splitlines()
    pairs = []
    for idx in chains:
        c = json.loads(lines[idx])
        task = c["subtasks"][0]
        env.reset_to_state(np.array(c["robot_obs"]), np.array(c["scene_obs"]))
        env.begin_subtask(task)
        start = capture(env)
        states, _ = run_plan(env, task)
        for k in sorted({len(states) // 2, len(states) - 1}):
            pairs.append({"name": f"chain/{idx}/{task}/step{k + 1}", "start": start, "end": states[k]})
    return pairs


# ---------------------------------------------------------------------------------------------- edge cases
def edit(state: dict, block: str, dpos=(0.0, 0.0, 0.0), pos=None, dyaw: float = 0.0, vel=None) -> dict:
    """A copy of ``state`` with ``block`` moved (``pos`` absolute or ``dpos`` relative, m), turned by ``dyaw``
    rad about world z, or given velocities ``vel`` (6,)."""
    out = json.loads(json.dumps({k: v for k, v in state.items() if not k.startswith("_")}))
    i = 6 + 6 * BLOCKS.index(block)
    s = out["scene_obs"]
    new = np.array(pos if pos is not None else s[i:i + 3], dtype=np.float64) + np.asarray(dpos)
    s[i:i + 3] = [round(float(v), 6) for v in new]
    if dyaw:
        q = p.multiplyTransforms([0, 0, 0], p.getQuaternionFromEuler([0, 0, dyaw]), [0, 0, 0],
                                 p.getQuaternionFromEuler(s[i + 3:i + 6]))[1]
        s[i + 3:i + 6] = [round(float(v), 6) for v in p.getEulerFromQuaternion(q)]
    if vel is not None:
        out["block_vel"][block] = [float(v) for v in vel]
    return out


def _pos(state: dict, block: str) -> np.ndarray:
    i = 6 + 6 * BLOCKS.index(block)
    return np.array(state["scene_obs"][i:i + 3])


def _only_robot(state: dict, block: str) -> bool:
    c = state["_contacts"][block]
    return bool(c) and all(b == "robot" for b, _ in c)


def _rollout(env: CalvinSceneEnv, task: str, seed: int) -> tuple[dict, list[dict]]:
    env.reset(seed=seed, task=task)
    start = capture(env)
    return start, run_plan(env, task)[0]


def rotate_edges(env: CalvinSceneEnv, seed: int) -> list[Pair]:
    start, states = _rollout(env, "rotate_red_block_left", seed)
    end = states[-1]
    toward_centre = -np.sign(_pos(end, "block_red")[0]) or 1.0
    turning = [s for s in states if _only_robot(s, "block_red")]
    lift0, lift = _rollout(env, "lift_blue_block_table", seed)
    carried = [s for s in lift if _only_robot(s, "block_blue")][-1]
    dx = toward_centre * np.array([1.0, 0.0, 0.0])
    return [{"name": "edge/rotate_moved_12cm", "start": start, "end": edit(end, "block_red", 0.12 * dx)},
            {"name": "edge/rotate_moved_8cm", "start": start, "end": edit(end, "block_red", 0.08 * dx)},
            {"name": "edge/rotate_while_turning_in_air", "start": start, "end": turning[-1]},
            {"name": "edge/rotate_while_carried", "start": lift0, "end": edit(carried, "block_blue", dyaw=1.2)},
            {"name": "edge/rotate_right_while_carried", "start": lift0, "end": edit(carried, "block_blue", dyaw=-1.2)}]


def push_edges(env: CalvinSceneEnv, seed: int) -> list[Pair]:
    start, states = _rollout(env, "push_blue_block_right", seed)
    x0 = _pos(start, "block_blue")[0]
    touching = [s for s in states if ("robot", "finger") in s["_contacts"]["block_blue"]
                or ("robot", "arm") in s["_contacts"]["block_blue"]]
    far = max(touching, key=lambda s: _pos(s, "block_blue")[0] - x0)
    d0, drawer = _rollout(env, "push_into_drawer", seed)
    pushing = [s for s in drawer if any(c[0] == "robot" for b in BLOCKS for c in s["_contacts"][b])
               and any(("table", "base_link") in s["_contacts"][b] for b in BLOCKS)]
    return [{"name": "edge/push_robot_still_touching", "start": start, "end": far},
            {"name": "edge/push_into_drawer_robot_touching_at_start", "start": pushing[0], "end": drawer[-1]},
            {"name": "edge/push_into_drawer_robot_touching_at_end", "start": d0,
             "end": next((s for s in drawer if any(("table", "drawer_link") in s["_contacts"][b]
                                                   and any(c[0] == "robot" for c in s["_contacts"][b])
                                                   for b in BLOCKS)), drawer[-1])}]


def stack_edges(env: CalvinSceneEnv, seed: int) -> list[Pair]:
    """Stacked by hand (pink put on blue, no grasp anywhere), taken apart again, and with fast blocks."""
    env.reset(seed=seed, task="push_red_block_right")
    table = capture(env)
    blue = _pos(table, "block_blue")
    i = 6 + 6 * BLOCKS.index("block_blue")
    stacked = edit(table, "block_pink", pos=blue + [0, 0, env.scene.block_size["block_blue"][2] - 0.0005])
    stacked["scene_obs"][i + 9:i + 12] = table["scene_obs"][i + 3:i + 6]  # pink lies square on blue
    fast = [0.0, 0.0, 0.0, 0.0, 0.0, 1.5]
    slow = [0.0, 0.0, 0.0, 0.0, 0.0, 0.9]
    return [{"name": "edge/stack_without_grasp", "start": table, "end": stacked},
            {"name": "edge/stack_block_spinning", "start": table, "end": edit(stacked, "block_pink", vel=fast)},
            {"name": "edge/stack_block_turning_slowly", "start": table, "end": edit(stacked, "block_pink", vel=slow)},
            {"name": "edge/unstack_by_hand", "start": stacked, "end": table},
            {"name": "edge/unstack_start_spinning", "start": edit(stacked, "block_pink", vel=fast), "end": table},
            {"name": "edge/unstack_start_slow", "start": edit(stacked, "block_pink", vel=slow), "end": table},
            {"name": "edge/unstack_lower_block_moving", "start": edit(stacked, "block_blue", vel=[1.5, 0, 0, 0, 0, 0]),
             "end": table}]


def place_lift_edges(env: CalvinSceneEnv, seed: int) -> list[Pair]:
    """The held (or lifted) block also touching another block from below, at the start of a place or at the
    end of a lift; lights toggled."""
    start, states = _rollout(env, "place_in_drawer", seed)
    held = next(b for b in BLOCKS if ("robot", "finger") in _contact_key_of(start, env, b))
    other = next(b for b in BLOCKS if b != held)
    below = _pos(start, held) - [0, 0, 0.04 - 0.0005]
    lift0, lift = _rollout(env, "lift_red_block_table", seed)
    up = [s for s in lift if _only_robot(s, "block_red")][-1]
    under = _pos(up, "block_red") - [0, 0, 0.04 - 0.0005]
    lights = json.loads(json.dumps(lift0))
    lights["scene_obs"][4] = 1.0 - lights["scene_obs"][4]
    lights["scene_obs"][5] = 1.0 - lights["scene_obs"][5]
    return [{"name": "edge/place_held_block_touching_another", "start": edit(start, other, pos=below),
             "end": states[-1]},
            {"name": "edge/lift_block_touching_another", "start": lift0, "end": edit(up, "block_blue", pos=under)},
            {"name": "edge/lights_toggled", "start": lift0, "end": lights},
            {"name": "edge/lights_toggled_back", "start": lights, "end": lift0}]


def _contact_key_of(state: dict, env: CalvinSceneEnv, block: str) -> set:
    """Our contacts of ``block`` in ``state`` (rebuilt: for states captured outside run_plan)."""
    rebuild(env, state)
    return env.state().contacts[block]


def rebuild(env: CalvinSceneEnv, state: dict) -> None:
    """Puts a stored state into our env: reset_to_state, fingers at half the stored gripper width each (as the
    official reset), the stored block velocities."""
    env.reset_to_state(np.array(state["robot_obs"]), np.array(state["scene_obs"]), physics_steps=0)
    s = env.scene
    for j in (9, 11):
        p.resetJointState(s.robot, j, state["robot_obs"][6] / 2, 0.0, physicsClientId=s.client)
    for b, v in state["block_vel"].items():
        p.resetBaseVelocity(s.blocks[b], v[:3], v[3:], physicsClientId=s.client)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--chains", default="", help="chain indices (comma-separated); default: the first chain "
                    "for each distinct first subtask")
    args = ap.parse_args()
    env = CalvinSceneEnv(render=False)
    pairs = expert_pairs(env, args.seed)
    pairs += chain_pairs(env, [int(c) for c in args.chains.split(",")] if args.chains else first_of_each_subtask())
    for make in (rotate_edges, push_edges, stack_edges, place_lift_edges):
        pairs += make(env, args.seed)
    for pair in pairs:
        for k in ("start", "end"):
            pair[k] = {key: v for key, v in pair[k].items() if not key.startswith("_")}
    args.out.write_text(json.dumps({"seed": args.seed, "pairs": pairs}))
    print(f"{len(pairs)} pairs -> {args.out}")


if __name__ == "__main__":
    main()
