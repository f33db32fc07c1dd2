"""Records controller, gripper and mechanism behaviour of the OFFICIAL calvin_env (scene D) for our physics
fidelity test (test/sim/calvin/test_fidelity_physics.py).

Runs only in a venv that has mees/calvin_env installed (never in the project's venv; nothing of calvin_env is
copied into the project). Recipe for that venv: ../shared/tools/calvin_official/README.md. Exact commands used:

    D=/work/calvin_official/physics   # the venv of tools/calvin_official/README.md
    cd /tmp && OMP_NUM_THREADS=1 $D/venv/bin/python /work/main/tools/calvin_official/record_physics.py \
        --calvin-env $D/calvin_env --shared /work/shared --out /work/main/test/sim/calvin/fidelity_data/physics.json

Every case builds a fresh official env with hydra (``config_data_collection``, ``cameras=no_cameras``,
``use_vr=false``, ``env.use_egl=false``; no camera is rendered, the renderer does not matter here) and calls
``env.reset(robot_obs=..., scene_obs=...)`` with a chain's start state from
``<shared>/calvin/eval/eval_sequences.jsonl`` (the scene_obs may be edited, see below). Two kinds of case:

Each case stores its ``start`` (robot_obs (15,), scene_obs (24,)) as passed to ``env.reset``.

* ``sequences``: 30 fixed relative actions (7,) in [-1, 1] through ``env.step``; per step (reset included, so
  31 rows) ``robot_obs`` (15,), ``scene_obs`` (24,) and the number of contact points between the robot and
  anything else (0 = free motion).
* ``mechanisms``: zero motion (gripper open) for ``steps`` steps after an optional ``poke``: the recorder sets
  one table joint's position (m) and velocity (m/s) directly with ``p.resetJointState`` after ``warmup``
  steps (a push the official env has no action for); per step the four table joints and the two lights.

Output: one JSON (numbers rounded to 1e-7) with ``meta`` (versions, date, command) and the cases.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

STEPS = 30
OPEN, CLOSE = 1.0, -1.0


def _const(move: tuple[float, ...], grip: float = OPEN) -> np.ndarray:
    """(STEPS, 7) of one constant relative action."""
    return np.tile(np.array([*move, grip], dtype=np.float64), (STEPS, 1))


def _mixed() -> np.ndarray:
    """Smoothly varying motion in all six axes; the gripper closes at step 10 and opens at step 20."""
    t = np.arange(STEPS, dtype=np.float64)
    a = np.stack([0.6 * np.sin(t / 5), 0.5 * np.cos(t / 7), 0.4 * np.sin(t / 3), 0.3 * np.sin(t / 4),
                  0.2 * np.cos(t / 6), 0.5 * np.sin(t / 8), np.where((t >= 10) & (t < 20), CLOSE, OPEN)], axis=1)
    return a


def _gripper_close_open() -> np.ndarray:
    a = np.zeros((STEPS, 7))
    a[:, 6] = np.where(np.arange(STEPS) < 15, CLOSE, OPEN)
    return a


def _press_button() -> np.ndarray:
    """From the neutral pose over the button (-0.12, -0.12) with the gripper closed, down onto it, back up."""
    a = np.zeros((STEPS, 7))
    a[:, 6] = CLOSE
    a[:8, 0], a[:8, 1] = -0.915, 0.695  # 8 steps: (0.026, -0.231) -> (-0.12, -0.12)
    a[8:20, 2] = -0.6
    a[20:, 2] = 0.8
    return a


#: name -> (chain index, actions (STEPS, 7)).
SEQUENCES: dict[str, tuple[int, Callable[[], np.ndarray]]] = {
    "plus_x": (0, lambda: _const((1.0, 0, 0, 0, 0, 0))),
    "plus_z": (0, lambda: _const((0, 0, 0.5, 0, 0, 0))),
    "minus_y": (1, lambda: _const((0, -0.3, 0, 0, 0, 0))),
    "plus_x_plus_z": (2, lambda: _const((1.0, 0, 1.0, 0, 0, 0))),
    "diagonal_down": (3, lambda: _const((-0.4, 0.3, -0.15, 0, 0, 0))),
    "roll": (0, lambda: _const((0, 0, 0, 0.5, 0, 0))),
    "pitch": (4, lambda: _const((0, 0, 0, 0, 0.5, 0))),
    "yaw": (1, lambda: _const((0, 0, 0, 0, 0, 1.0))),
    "mixed": (5, _mixed),
    "gripper_close_open": (0, _gripper_close_open),
    "press_button": (3, _press_button),
}

SWITCH_TRAVEL, BUTTON_TRAVEL = 0.088, 0.02  # m, upper joint limits of base__switch / base__button (lower: 0)


def mechanism_cases() -> list[dict]:
    """Mechanism checks: ``scene`` edits of the chain's scene_obs {index: value}, optional ``poke``
    (joint name, position m, velocity m/s) after ``warmup`` steps, then ``steps`` zero-motion steps."""
    cases = []
    for frac in (0.0, 0.3, 0.45, 0.55, 0.7, 1.0):  # reset states, consistent or not with the bulb
        for bulb in (0, 1):
            cases.append({"name": f"switch_reset_{frac:.2f}_bulb{bulb}", "chain": 3,
                          "scene": {3: frac * SWITCH_TRAVEL, 4: float(bulb)}, "warmup": 0, "poke": None, "steps": 10})
    for start, to, vel in ((0.0, 0.55, 0.0), (1.0, 0.45, 0.0), (0.0, 0.3, 0.25), (1.0, 0.7, -0.25),
                           (0.0, 0.45, 0.1), (1.0, 0.55, -0.1)):
        cases.append({"name": f"switch_poke_{start:.0f}_to_{to:.2f}_v{vel:+.2f}", "chain": 3,
                      "scene": {3: start * SWITCH_TRAVEL, 4: float(start > 0.5)}, "warmup": 2,
                      "poke": ["base__switch", to * SWITCH_TRAVEL, vel], "steps": 30})
    for frac in (0.3, 0.45, 0.55, 0.8, 1.0):
        for led in (0, 1):
            cases.append({"name": f"button_poke_{frac:.2f}_led{led}", "chain": 3, "scene": {2: 0.0, 5: float(led)},
                          "warmup": 2, "poke": ["base__button", frac * BUTTON_TRAVEL, 0.0], "steps": 30})
    cases.append({"name": "button_reset_pressed", "chain": 3, "scene": {2: BUTTON_TRAVEL, 5: 0.0}, "warmup": 0,
                  "poke": None, "steps": 30})
    for joint, pos, vel in (("base__slide", 0.1, 0.4), ("base__slide", 0.2, -0.2), ("base__drawer", 0.1, 0.3),
                            ("base__drawer", 0.15, -0.2)):
        cases.append({"name": f"{joint[6:]}_poke_{pos:.2f}_v{vel:+.2f}", "chain": 3, "scene": {},
                      "warmup": 2, "poke": [joint, pos, vel], "steps": 30})
    return cases


def make_env(calvin_env_dir: Path, shared: Path):
    """A fresh official PlayTableSimEnv (scene D, no cameras, tiny renderer)."""
    import hydra

    overrides = ["cameras=no_cameras", "use_vr=false", f"data_path={shared / 'calvin' / 'data'}", "env.use_egl=false"]
    with hydra.initialize_config_dir(str(calvin_env_dir / "conf"), version_base=None):
        cfg = hydra.compose("config_data_collection", overrides=overrides)
    return hydra.utils.instantiate(cfg.env, show_gui=False, use_vr=False, use_scene_info=True)


def _close(env) -> None:
    """Disconnects now; the env's __del__ must not disconnect again later (the next env may reuse the id)."""
    env.close()
    env.ownsPhysicsClient = False


def _r(x) -> list:
    return np.round(np.asarray(x, dtype=np.float64), 7).tolist()


def run_sequence(env, robot_obs: np.ndarray, scene_obs: np.ndarray, actions: np.ndarray) -> dict:
    """Resets to the start state and steps ``actions`` (N, 7); rows: reset + N steps."""
    import pybullet as p

    obs = env.reset(robot_obs=robot_obs, scene_obs=scene_obs)
    rows_r, rows_s, contacts = [obs["robot_obs"]], [obs["scene_obs"]], []

    def n_contacts() -> int:
        return sum(1 for c in p.getContactPoints(bodyA=env.robot.robot_uid, physicsClientId=env.cid)
                   if c[2] != env.robot.robot_uid)

    contacts.append(n_contacts())
    for a in actions:
        obs, *_ = env.step(a.copy())
        rows_r.append(obs["robot_obs"])
        rows_s.append(obs["scene_obs"])
        contacts.append(n_contacts())
    return {"actions": _r(actions), "robot_obs": _r(rows_r), "scene_obs": _r(rows_s), "robot_contacts": contacts}


def run_mechanism(env, robot_obs: np.ndarray, scene_obs: np.ndarray, case: dict) -> dict:
    """One mechanism case (see :func:`mechanism_cases`); rows: reset + warmup + steps, each the 4 table joints
    (m) and the 2 lights (scene_obs[:6])."""
    import pybullet as p

    obs = env.reset(robot_obs=robot_obs, scene_obs=scene_obs)
    rows = [obs["scene_obs"][:6]]
    still = np.array([0, 0, 0, 0, 0, 0, OPEN])
    for _ in range(case["warmup"]):
        rows.append(env.step(still.copy())[0]["scene_obs"][:6])
    if case["poke"] is not None:
        name, pos, vel = case["poke"]
        table = env.scene.fixed_objects[0].uid
        j = next(i for i in range(p.getNumJoints(table, physicsClientId=env.cid))
                 if p.getJointInfo(table, i, physicsClientId=env.cid)[1].decode() == name)
        p.resetJointState(table, j, pos, vel, physicsClientId=env.cid)
    for _ in range(case["steps"]):
        rows.append(env.step(still.copy())[0]["scene_obs"][:6])
    return {"rows": _r(rows)}


def _meta(calvin_env_dir: Path, argv: list[str]) -> dict:
    import pybullet as p

    def version(mod: str) -> str:
        try:
            from importlib.metadata import version as v

            return v(mod)
        except Exception:  # noqa: BLE001
            return "?"

    upstream = "797142c (mees/calvin_env HEAD, 'fix bug in button during rollouts')"
    return {"calvin_env": upstream, "calvin_env_dir": str(calvin_env_dir), "pybullet": version("pybullet"),
            "pybullet_api": p.getAPIVersion(), "numpy": np.__version__, "python": sys.version.split()[0],
            "date": datetime.date.today().isoformat(), "command": " ".join(["python", *argv]),
            "steps_per_sequence": STEPS, "control_hz": 30, "physics_hz": 240,
            "robot_obs": "tcp xyz (m), tcp euler xyz (rad), gripper width (m), 7 arm joints (rad), gripper action",
            "scene_obs": "slider, drawer, button, switch (m), lightbulb, LED, 3 x block xyz + euler"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calvin-env", type=Path, required=True, help="extracted calvin_env source (with its conf/)")
    ap.add_argument("--shared", type=Path, required=True, help="folder holding calvin/ (data, eval)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    chains = [json.loads(line) for line in (args.shared / "calvin/eval/eval_sequences.jsonl").read_text().splitlines()
              if line.strip()]
    out: dict = {"meta": _meta(args.calvin_env, sys.argv), "sequences": {}, "mechanisms": {}}
    for name, (chain, make) in SEQUENCES.items():
        env = make_env(args.calvin_env, args.shared)
        robot, scene = np.array(chains[chain]["robot_obs"]), np.array(chains[chain]["scene_obs"])
        out["sequences"][name] = {"chain": chain, "start": {"robot_obs": _r(robot), "scene_obs": _r(scene)},
                                  **run_sequence(env, robot, scene, make())}
        _close(env)
        print(name, "robot contacts per step:", out["sequences"][name]["robot_contacts"], flush=True)
    for case in mechanism_cases():
        env = make_env(args.calvin_env, args.shared)
        robot, scene = np.array(chains[case["chain"]]["robot_obs"]), np.array(chains[case["chain"]]["scene_obs"])
        for i, v in case["scene"].items():
            scene[i] = v
        rec = run_mechanism(env, robot, scene, case)
        out["mechanisms"][case["name"]] = {**{k: case[k] for k in ("chain", "warmup", "poke", "steps")},
                                           "start": {"robot_obs": _r(robot), "scene_obs": _r(scene)}, **rec}
        _close(env)
        print(case["name"], "final", rec["rows"][-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print("wrote", args.out, f"{args.out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
