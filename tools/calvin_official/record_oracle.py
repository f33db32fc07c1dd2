"""Records the OFFICIAL calvin_env task oracle's verdicts on our state pairs (for the oracle fidelity test).

Stage 2 of 2 (stage 1, ``make_oracle_pairs.py``, makes the pairs in the project's venv). Runs only in a venv
with mees/calvin_env installed (never the project's venv; nothing of calvin_env is copied into the project).
Exact commands used (venv recipe: ../shared/tools/calvin_official/README.md):

    D=/work/calvin_official/oracle
    mkdir -p $D/calvin_env && git --git-dir=/work/.mirror/mees+calvin_env/repo archive HEAD | tar -x -C $D/calvin_env
    (cd $D/calvin_env && git init -q && git add -A && git commit -qm import)
    python3.11 -m venv $D/venv
    $D/venv/bin/pip install pybullet==3.2.7 "numpy<2" gym==0.26.2 hydra-core==1.3.8 omegaconf==2.3.1 \
        opencv-python-headless numpy-quaternion gitpython hydra-colorlog scipy
    $D/venv/bin/pip install -e $D/calvin_env --no-deps
    OMP_NUM_THREADS=1 nice .venv/bin/python tools/calvin_official/make_oracle_pairs.py --out $D/pairs.json
    cd /tmp && OMP_NUM_THREADS=1 nice $D/venv/bin/python /work/main/tools/calvin_official/record_oracle.py \
        --calvin-env $D/calvin_env --shared /work/shared --pairs $D/pairs.json \
        --calvin-commit $(git --git-dir=/work/.mirror/mees+calvin_env/repo rev-parse HEAD) \
        --out /work/main/test/sim/calvin/fidelity_data/oracle.json

The env is built with hydra from the source's ``conf/`` (``config_data_collection``, ``cameras=no_cameras``,
``use_vr=false``, ``env.use_egl=false``, ``data_path=<shared>/calvin/data``) and the oracle is
``hydra.utils.instantiate(cfg.tasks)`` (``conf/tasks/new_playtable_tasks.yaml``). Each state is put in as:
``env.reset(robot_obs=..., scene_obs=...)`` (the official reset, one physics step), then the same poses again
without stepping (``env.scene.reset(scene_obs)``, ``env.robot.reset(robot_obs)``: the step moved falling or
squeezed bodies slightly), the stored block velocities (``resetBaseVelocity``) and
``performCollisionDetection`` (so ``getContactPoints``, which the oracle reads, holds the contacts of exactly
these poses); then ``env.get_info()``. The verdict is ``tasks.get_task_info(start_info, end_info)`` over all 34
tasks (``official_achieved``: the tasks it reports achieved; ``tasks``: the 34 it judged). The official
contacts are stored too, in our naming (blocks: ``[body, link]`` pairs; robot: bodies).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

FINGER_LINKS = (9, 10, 11, 12)


def build(calvin_env: Path, shared: Path):
    """(env, tasks) of the official calvin_env, scene D, no cameras."""
    import hydra
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(calvin_env / "conf"), version_base=None):
        cfg = compose("config_data_collection", overrides=[
            "cameras=no_cameras", "use_vr=false", f"data_path={shared / 'calvin/data'}", "env.use_egl=false",
            "scene=calvin_scene_D"])
    env = hydra.utils.instantiate(cfg.env, show_gui=False, use_vr=False, use_scene_info=True)
    return env, hydra.utils.instantiate(cfg.tasks)


def namer(env) -> dict:
    """uid -> our body name (the floor plane: "plane"), and the table's link index -> link name."""
    import pybullet as p

    info = env.get_info()
    names = {uid: "plane" for uid in range(p.getNumBodies(physicsClientId=env.cid))
             if p.getBodyInfo(uid, physicsClientId=env.cid)[1] == b"plane"}
    names[info["robot_info"]["uid"]] = "robot"
    names |= {v["uid"]: k for k, v in info["scene_info"]["movable_objects"].items()}
    names |= {v["uid"]: k for k, v in info["scene_info"]["fixed_objects"].items()}
    table_links = {v: k for k, v in info["scene_info"]["fixed_objects"]["table"]["links"].items()}
    return {"bodies": names, "table_links": table_links}


def named(contact: tuple, names: dict) -> list[str]:
    """One getContactPoints entry as our (body, link) naming."""
    uid, link = contact[2], contact[4]
    body = names["bodies"].get(uid, "other")
    if body == "table":
        return ["table", names["table_links"].get(link, str(link))]
    if body == "robot":
        return ["robot", "finger" if link in FINGER_LINKS else "arm"]
    return [body, "base_link"]


def put_state(env, state: dict, names: dict) -> tuple[dict, dict]:
    """Puts ``state`` into the official env (see the module docstring); (info, official contacts named)."""
    import pybullet as p

    robot_obs, scene_obs = np.array(state["robot_obs"]), np.array(state["scene_obs"])
    env.reset(robot_obs=robot_obs, scene_obs=scene_obs)
    env.scene.reset(scene_obs)
    env.robot.reset(robot_obs)
    for obj in env.scene.movable_objects:
        v = state["block_vel"][obj.name]
        p.resetBaseVelocity(obj.uid, v[:3], v[3:], physicsClientId=env.cid)
    p.performCollisionDetection(physicsClientId=env.cid)
    info = env.get_info()
    contacts = {k: sorted({tuple(named(c, names)) for c in v["contacts"]})
                for k, v in info["scene_info"]["movable_objects"].items()}
    robot = sorted({named(c, names)[0] for c in info["robot_info"]["contacts"]})
    return info, {"blocks": [list(c) for c in contacts.items()], "robot": robot}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calvin-env", type=Path, required=True)
    ap.add_argument("--shared", type=Path, required=True)
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument("--calvin-commit", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    env, tasks = build(args.calvin_env, args.shared)
    names = namer(env)
    data = json.loads(args.pairs.read_text())
    for pair in data["pairs"]:
        start_info, pair["start"]["official_contacts"] = put_state(env, pair["start"], names)
        end_info, pair["end"]["official_contacts"] = put_state(env, pair["end"], names)
        pair["official_achieved"] = sorted(tasks.get_task_info(start_info, end_info))
    data["tasks"] = list(tasks.tasks)  # every pair was judged on all of these; the rest of them: not achieved
    data["provenance"] = {"calvin_env_commit": args.calvin_commit, "python": sys.version.split()[0],
                          "date": datetime.date.today().isoformat(), "command": " ".join(sys.argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"{len(data['pairs'])} pairs -> {args.out}")


if __name__ == "__main__":
    main()
