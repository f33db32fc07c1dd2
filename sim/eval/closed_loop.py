"""``ivm-ros sim-eval-policy``: closed-loop evaluation over real topics, on sim time.

    sim_node (lockstep) --camera/image_raw--> masking_node (lite) --masked_image--> policy_node --action--> sim_node
                        --gripper_camera/image_raw, sim_node/robot_obs-------------------^

Each node runs in its own process (``python -m``); this harness is one more node that sets the sim's task
parameters, calls ``policy_node/reset`` and ``sim_node/reset``, and polls ``sim_node/get_success`` until the
task succeeds or the sim's ``max_steps`` is reached. Conditions: {clean, large distraction} x {masking on
(policy trained on lite-masked frames, fed masked frames), masking off (policy trained on raw frames, fed the
raw camera)}. Writes ``results.json``, ``success.png`` (success rate per task and condition) and a few rollout
GIFs (camera | what the policy saw).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ivm_ros.paths import use_fastdds_profile

TASKS = ("lift_red_block_table", "lift_blue_block_table", "open_drawer", "turn_on_led", "move_slider_left",
         "push_pink_block_right")


def node_commands(masking: bool, args: argparse.Namespace) -> dict[str, list[str]]:
    """``python -m`` command lines of the nodes of one masking condition."""
    py = [sys.executable, "-m"]
    sim = [*py, "ivm_ros_sim.ros.sim_node", "--ros-args", "-p", "lockstep:=true", "-p", "lockstep_timeout:=2.0",
           "-p", "seed_increment:=0",
           "-p", f"max_steps:={args.max_steps}", "-p", "publish_gripper_camera:=true", "-p", "sentence_split:=eval",
           "-p", "action_timeout:=0.1"]
    variant = "masked" if masking else "raw"
    image = "masking_node/masked_image" if masking else "camera/image_raw"
    policy = [*py, "ivm_ros.ros.policy_node", "--ros-args", "-p", f"policy:={args.policy}",
              "-p", f"policy_config.variant:={variant}", "-p", "act_on_every_frame:=true", "-p", "start_enabled:=true",
              "-p", "use_wrist_image:=true", "-p", "use_proprio:=true", "-p", "use_sim_time:=true",
              "-p", "observation_timeout:=0.0", "-p", "image_qos:=reliable", "-r", f"image:={image}",
              "-r", "wrist_image:=gripper_camera/image_raw", "-r", "proprio:=sim_node/robot_obs",
              "-r", "policy_node/action:=action"]
    cmds = {"sim_node": sim, "policy_node": policy}
    if masking:
        cmds["masking_node"] = [*py, "ivm_ros.ros.masking_node", "--ros-args", "-p", f"model:={args.model}",
                                "-p", "use_sim_time:=true", "-p", "image_qos:=reliable",
                                "-r", "image_raw:=camera/image_raw"]
    return cmds


class Harness:
    """The evaluating node: parameters, services and the episode loop."""

    def __init__(self, record: bool, answer_timeout: float = 10.0) -> None:
        import rclpy
        from rcl_interfaces.srv import SetParameters
        from sensor_msgs.msg import Image
        from std_srvs.srv import Trigger

        from ivm_ros.ros import qos

        self.rclpy = rclpy
        self.node = rclpy.create_node("ivm_closed_loop_eval")
        self.set_params = self.node.create_client(SetParameters, "sim_node/set_parameters")
        self.reset_sim = self.node.create_client(Trigger, "sim_node/reset")
        self.get_success = self.node.create_client(Trigger, "sim_node/get_success")
        self.reset_policy = self.node.create_client(Trigger, "policy_node/reset")
        self.frames: dict[str, list] = {"camera": [], "seen": []}
        self.settle_s = 0.5  # wall seconds for a new instruction to reach masking_node and policy_node
        # wall seconds a node may take to answer a service call: a node that has just advertised its services can
        # still be busy finishing its start on a loaded machine (run() passes --startup-timeout)
        self.answer_timeout = answer_timeout
        self.resent = 0  # service requests sent again after an unanswered try (see call_resending)
        self.record = False
        if record:
            self.node.create_subscription(Image, "camera/image_raw", lambda m: self._keep("camera", m),
                                          qos.profile("reliable", 10))
            self.node.create_subscription(Image, "masking_node/masked_image", lambda m: self._keep("seen", m),
                                          qos.profile("reliable", 10))

    def _keep(self, kind: str, msg) -> None:
        if self.record:
            from ivm_ros.ros.conversions import image_to_array

            self.frames[kind].append(image_to_array(msg)[0].copy())

    #: seconds one try of a service call waits before the request is sent again
    retry_s = 10.0

    def call_resending(self, client, request, timeout: float, retry_s: float | None = None) -> Any:
        """The answer of ``client`` to ``request`` (every call here is idempotent), the request sent again every
        ``retry_s`` seconds (default: the class's) until ``timeout`` seconds have passed: a server that has just
        matched the request topic can still miss the response one (an answer lost so, not a slow node, left
        set_parameters unanswered for 90 s in CI). Resends are counted in ``self.resent`` and logged. TimeoutError
        when no try is answered. ``retry_s`` >= ``timeout``: one try."""
        deadline, retry_s = time.monotonic() + timeout, retry_s or self.retry_s
        while True:
            future = client.call_async(request)
            left = deadline - time.monotonic()
            self.rclpy.spin_until_future_complete(self.node, future, timeout_sec=max(0.0, min(retry_s, left)))
            if future.done():
                return future.result()
            client.remove_pending_request(future)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{client.srv_name}: no answer within {timeout:.0f} s")
            self.resent += 1
            self.node.get_logger().warning(f"{client.srv_name}: no answer within {retry_s:.0f} s, sending again")

    def wait_ready(self, timeout: float) -> None:
        for client in (self.reset_sim, self.get_success, self.reset_policy, self.set_params):
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {client.srv_name} not available after {timeout} s")

    def episode(self, task: str, seed: int, level: str, max_steps: int, wall_timeout: float, record: bool = False
                ) -> dict[str, Any]:
        """One episode; with ``record`` the camera and masked frames of the run are kept in ``self.frames``."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter
        from std_srvs.srv import Trigger

        request = SetParameters.Request(parameters=[
            Parameter("task", value=task).to_parameter_msg(), Parameter("seed", value=seed).to_parameter_msg(),
            Parameter("distraction", value=level).to_parameter_msg()])
        result = self.call_resending(self.set_params, request, self.answer_timeout)
        if not all(r.successful for r in result.results):
            raise RuntimeError(f"sim_node refused parameters: {[r.reason for r in result.results]}")
        # A reset's frame and its instruction travel on different topics, so the first frame of a new task could
        # be masked and acted on for the previous one. Reset once to deliver the instruction, let it settle, then
        # reset the policy and the sim again (same seed: the same episode) and run that one.
        answer = self.call_resending(self.reset_sim, Trigger.Request(), 60, retry_s=30)
        if not answer.success:
            raise RuntimeError(f"sim_node reset failed: {answer.message}")
        end = time.monotonic() + self.settle_s
        while time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.05)
        self.call_resending(self.reset_policy, Trigger.Request(), self.answer_timeout)
        for v in self.frames.values():
            v.clear()
        self.record = record
        t0 = time.monotonic()
        answer = self.call_resending(self.reset_sim, Trigger.Request(), 60, retry_s=30)
        if not answer.success:
            raise RuntimeError(f"sim_node reset failed: {answer.message}")
        report: dict[str, Any] = {}
        while time.monotonic() - t0 < wall_timeout:
            self.rclpy.spin_once(self.node, timeout_sec=0.2)
            reply = self.call_resending(self.get_success, Trigger.Request(), self.answer_timeout)
            report = json.loads(reply.message)
            if reply.success or report.get("steps", 0) >= max_steps:
                break
        self.record = False
        if report.get("seed") != seed:
            raise RuntimeError(f"sim_node ran seed {report.get('seed')} when asked for {seed}")
        report["wall_s"] = time.monotonic() - t0
        report["success"] = bool(report.get("success", False))
        return report


def save_gif(path: Path, camera: list[np.ndarray], seen: list[np.ndarray], fps: int = 15) -> None:
    """camera | seen frames side by side (RGB) as an animated GIF."""
    from PIL import Image

    n = min(len(camera), len(seen)) if seen else len(camera)
    tiles = [np.hstack([camera[i], seen[i]]) if seen else camera[i] for i in range(n)]
    if not tiles:
        return
    imgs = [Image.fromarray(t) for t in tiles]
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)


def plot(results: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = list(results)
    tasks = list(dict.fromkeys(t for c in conds for t in results[c]))
    x = np.arange(len(tasks))
    w = 0.8 / len(conds)
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(tasks) + 2), 4))
    for k, c in enumerate(conds):
        ax.bar(x + (k - (len(conds) - 1) / 2) * w, [results[c].get(t, np.nan) for t in tasks], w, label=c)
    ax.set_xticks(x, tasks, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("success rate")
    ax.set_title("closed loop over ROS: sim_node -> masking_node -> policy_node -> sim_node")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import rclpy

    use_fastdds_profile()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    episodes = load_finished(out / "episodes.json") if args.resume else []
    done = {(ep["masking"], ep["level"], ep["task"], ep["seed"]) for ep in episodes}
    t_start = time.monotonic()
    for masking in args.masking:
        todo = [(lv, t, s) for lv in args.levels for t in args.tasks for s in range(args.seeds)
                if (masking, lv, t, args.start_seed + s) not in done]
        if not todo:
            continue
        procs = []
        logs = []
        for name, cmd in node_commands(masking == "on", args).items():
            log = open(out / f"{name}_{masking}.log", "w")  # noqa: SIM115 - closed below
            logs.append(log)
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()))
        rclpy.init()
        harness = Harness(record=args.gifs > 0, answer_timeout=max(10.0, args.startup_timeout))
        try:
            harness.wait_ready(args.startup_timeout)
            for level, task, s in tqdm(todo, desc=f"masking {masking}", unit="ep"):
                record = s < args.gifs
                rep = harness.episode(task, args.start_seed + s, level, args.max_steps, args.episode_timeout, record)
                rep |= {"masking": masking, "level": level, "task": task}
                episodes.append(rep)
                if record:
                    seen = harness.frames["seen"] if masking == "on" else []
                    save_gif(out / "gifs" / f"{task}_{level}_mask-{masking}_seed{args.start_seed + s}.gif",
                             harness.frames["camera"], seen)
                (out / "episodes.json").write_text(json.dumps(episodes, indent=1))
        finally:
            harness.node.destroy_node()
            rclpy.shutdown()
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
            for log in logs:
                log.close()
    return summarize(episodes, out, time.monotonic() - t_start)


def load_finished(path: Path) -> list[dict[str, Any]]:
    """Episodes already recorded in ``path`` (``[]`` when it does not exist), for ``--resume``."""
    if not path.exists():
        return []
    episodes = json.loads(path.read_text())
    keys = ("masking", "level", "task", "seed", "success")
    if not isinstance(episodes, list) or not all(isinstance(e, dict) and all(k in e for k in keys) for e in episodes):
        raise SystemExit(f"{path}: not an episodes list written by sim-eval-policy; remove it or drop --resume")
    return episodes


def summarize(episodes: list[dict[str, Any]], out: Path, wall: float) -> dict[str, Any]:
    table: dict[str, dict[str, float]] = {}
    for ep in episodes:
        cond = f"{'clean' if ep['level'] == 'none' else ep['level']} / masking {ep['masking']}"
        table.setdefault(cond, {}).setdefault(ep["task"], []).append(ep["success"])  # type: ignore[arg-type]
    rates = {c: {t: float(np.mean(v)) for t, v in per.items()} for c, per in table.items()}
    overall = {c: float(np.mean([s for v in table[c].values() for s in v])) for c in table}
    sim_s = sum(ep.get("elapsed_s", 0.0) for ep in episodes)
    wall_s = sum(ep["wall_s"] for ep in episodes)
    summary = {"overall": overall, "per_task": rates, "episodes": len(episodes), "sim_seconds": sim_s,
               "episode_wall_seconds": wall_s, "realtime_factor": sim_s / max(wall_s, 1e-9), "total_wall_s": wall}
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    plot(rates, out / "success.png")
    print(f"{'condition':<28}" + "".join(f"{t[:14]:>16}" for t in next(iter(rates.values()))) + f"{'all':>8}")
    for c, per in rates.items():
        print(f"{c:<28}" + "".join(f"{v:>16.2f}" for v in per.values()) + f"{overall[c]:>8.2f}")
    print(f"sim {sim_s:.1f} s in {wall_s:.1f} s of episode wall time: {summary['realtime_factor']:.2f}x real time")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ivm-ros sim-eval-policy", description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--levels", default="none,large")
    ap.add_argument("--masking", default="on,off")
    ap.add_argument("--seeds", type=int, default=5, help="episodes per task and condition")
    ap.add_argument("--start-seed", type=int, default=1000, help="first episode seed (demos used others)")
    ap.add_argument("--max-steps", type=int, default=150)
    ap.add_argument("--policy", default="embedded")
    ap.add_argument("--model", default="lite", help="masking_node predictor for 'masking on'")
    ap.add_argument("--gifs", type=int, default=1, help="episodes per task and condition saved as GIF")
    ap.add_argument("--startup-timeout", type=float, default=120.0)
    ap.add_argument("--episode-timeout", type=float, default=120.0, help="wall seconds per episode")
    ap.add_argument("--out", default="out/eval")
    ap.add_argument("--resume", action="store_true",
                    help="keep the episodes already in OUT/episodes.json and run only the missing ones")
    args = ap.parse_args(argv)
    for key in ("tasks", "levels", "masking"):
        setattr(args, key, [v for v in getattr(args, key).split(",") if v])
    bad = [m for m in args.masking if m not in ("on", "off")]
    if bad:
        ap.error(f"--masking takes on/off, got {bad}")
    run(args)
    return 0
