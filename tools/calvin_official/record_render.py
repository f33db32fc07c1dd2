"""Records camera images of the OFFICIAL calvin_env (scene D) for our rendering fidelity test.

Runs only in a venv that has mees/calvin_env installed (never in the project's venv; nothing of calvin_env is
copied into the project). Recipe for that venv: ../shared/tools/calvin_official/README.md. Exact commands used:

    D=/work/calvin_official/render   # the venv of tools/calvin_official/README.md
    cd /tmp && $D/venv/bin/python /work/main/tools/calvin_official/record_render.py \
        --calvin-env $D/calvin_env --shared /work/shared --out /work/main/test/sim/calvin/fidelity_data/render

For every state (chains of ../shared/calvin/eval/eval_sequences.jsonl chosen to cover the four LED/lightbulb
combinations, drawer and slider positions, plus two of them with the arm moved) it builds the official env
with hydra (``config_data_collection``, ``cameras=static_and_gripper``, ``use_vr=false``), calls
``env.reset(robot_obs=..., scene_obs=...)`` and saves ``obs["rgb_obs"]["rgb_static"|"rgb_gripper"]`` as PNGs
``<renderer>_<state>_<camera>.png`` plus ``index.json`` (states, files, versions). Each renderer runs in its own
process: ``tiny`` (``env.use_egl=false``, PyBullet's tiny renderer) and ``egl`` (``env.use_egl=true``, the
EGL plugin the official evaluation uses; on a machine without a GPU it runs on Mesa's software OpenGL, an
approximation of GPU output).
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

#: (name, chain index or None, arm joint offsets (rad) or None): filled in by :func:`choose_states`.
ARM_OFFSETS = {
    "arm_a": (0.35, -0.25, 0.0, 0.35, 0.0, -0.35, 0.6),
    "arm_b": (-0.4, 0.2, 0.1, -0.2, 0.3, 0.3, -0.5),
}


def choose_states(seq_file: Path) -> list[dict]:
    """Chain start states: the first chain for each (led, lightbulb) combination, alternating drawer open and
    closed, plus two with the arm joints offset (so the gripper camera sees other parts of the scene)."""
    chains = [json.loads(line) for line in seq_file.read_text().splitlines() if line.strip()]
    states: list[dict] = []
    for k, (led, bulb) in enumerate(((0, 0), (1, 1), (0, 1), (1, 0))):
        drawer = "open" if k % 2 else "closed"
        idx = next((i for i, c in enumerate(chains) if c["initial_state"]["led"] == led
                    and c["initial_state"]["lightbulb"] == bulb and c["initial_state"]["drawer"] == drawer),
                   next(i for i, c in enumerate(chains) if c["initial_state"]["led"] == led
                        and c["initial_state"]["lightbulb"] == bulb))
        c = chains[idx]
        states.append({"name": f"chain{idx}", "chain": idx, "initial_state": c["initial_state"],
                       "robot_obs": c["robot_obs"], "scene_obs": c["scene_obs"], "arm_offset": None})
    for (name, off), base in zip(ARM_OFFSETS.items(), (states[0], states[1])):
        robot = list(base["robot_obs"])
        robot[7:14] = [q + d for q, d in zip(robot[7:14], off)]
        states.append({**base, "name": f"{base['name']}_{name}", "robot_obs": robot, "arm_offset": list(off)})
    return states


def record(calvin_env: Path, shared: Path, out: Path, renderer: str, states: list[dict]) -> dict:
    """Builds the official env for ``renderer`` ("tiny" or "egl"), renders every state, writes the PNGs and
    returns {state name: {camera: file name}} plus what the env reports back."""
    import cv2
    import hydra
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(calvin_env / "conf"), version_base=None):
        cfg = compose("config_data_collection", overrides=[
            "cameras=static_and_gripper", "use_vr=false", f"data_path={shared / 'calvin' / 'data'}",
            f"env.use_egl={'true' if renderer == 'egl' else 'false'}"])
    env = hydra.utils.instantiate(cfg.env, show_gui=False, use_vr=False, use_scene_info=True)
    files: dict[str, dict] = {}
    for st in states:
        obs = env.reset(robot_obs=np.array(st["robot_obs"]), scene_obs=np.array(st["scene_obs"]))
        entry: dict = {"robot_obs_after": [float(v) for v in obs["robot_obs"]],
                       "scene_obs_after": [float(v) for v in obs["scene_obs"]]}
        for cam in ("static", "gripper"):
            rgb = np.asarray(obs["rgb_obs"][f"rgb_{cam}"], dtype=np.uint8)
            name = f"{renderer}_{st['name']}_{cam}.png"
            cv2.imwrite(str(out / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
            entry[cam] = name
        files[st["name"]] = entry
    return files  # the env disconnects itself when collected


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calvin-env", type=Path, required=True, help="extracted calvin_env source (with its conf/)")
    ap.add_argument("--shared", type=Path, required=True, help="folder holding calvin/ (data, eval)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--renderers", default="tiny,egl")
    ap.add_argument("--source-commit", default="797142c588c21e76717268b7b430958dbd13bf48",
                    help="the mees/calvin_env commit the --calvin-env copy was extracted from")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    states = choose_states(a.shared / "calvin/eval/eval_sequences.jsonl")
    a.out.mkdir(parents=True, exist_ok=True)
    if a.child:  # one renderer per process: calvin_env adds its base cylinder to PyBullet client 0
        part = record(a.calvin_env, a.shared, a.out, a.child, states)
        (a.out / f".{a.child}.json").write_text(json.dumps(part))
        return
    files: dict[str, dict] = {}
    for r in a.renderers.split(","):
        subprocess.run([sys.executable, __file__, "--calvin-env", str(a.calvin_env), "--shared", str(a.shared),
                        "--out", str(a.out), "--child", r], check=True)
        tmp = a.out / f".{r}.json"
        files[r] = json.loads(tmp.read_text())
        tmp.unlink()
    from importlib.metadata import version

    index = {
        "source": f"mees/calvin_env {a.source_commit} (scene D)",
        "pybullet": version("pybullet"),
        "date": datetime.date.today().isoformat(),
        "command": "tools/calvin_official/record_render.py --renderers " + a.renderers,
        "renderers": {"tiny": "env.use_egl=false: PyBullet's tiny renderer, default lighting",
                      "egl": "env.use_egl=true: PyBullet's EGL plugin on Mesa's software OpenGL"},
        "states": [{k: v for k, v in st.items()} for st in states],
        "images": files,
    }
    (a.out / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
