"""Scripted expert from privileged state (object poses and joint positions read from PyBullet).

:meth:`Expert.plan` is a generator of 7-D relative actions (the env's action space) that reads the simulator
between actions; :func:`rollout` drives it through ``env.step`` and records the episode. Motions are sequences
of Cartesian waypoints for the tcp with the gripper pointing down; the action moves the env's target pose
towards the next waypoint at up to 2 cm / 0.05 rad per step.

All 34 tasks have a plan: rotate, push and lift (table, drawer, sliding cabinet: entered from the front) of each
block, open/close drawer, slider left/right, lightbulb on/off (switch), LED on/off (button), place in drawer /
slider, stack, unstack, push into drawer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pybullet as p
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.env import MAX_REL_ORN, MAX_REL_POS, CalvinSceneEnv
from ivm_ros_sim.calvin.masks import mask_from_segmentation, relevant_parts
from ivm_ros_sim.calvin.scene import CalvinScene

DOWN_ROLL, DOWN_PITCH = np.pi, 0.0
HOME_YAW = np.pi / 2  # at this yaw the fingers close along world x
SWITCH_RAIL = np.array([0.0, 0.5, 0.866])  # world direction the switch moves when its joint increases


def _wrap(a: float | np.ndarray) -> float | np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


class Motions:
    """The motion primitives the task plans are written in: tcp moves towards Cartesian waypoints with the
    gripper pointing down (tipped forward by ``tilt`` rad), holds, grasp yaws and picks; bound to one env."""

    def __init__(self, env: CalvinSceneEnv) -> None:
        self.env = env
        self.scene = env.scene
        self.off = env.scene.offsets  # where this scene's mechanisms sit against scene D (x shifts, m)
        self.tilt = 0.0

    def _action(self, pos: np.ndarray, yaw: float, grip: float) -> np.ndarray:
        env = self.env
        a = np.zeros(7)
        a[:3] = np.clip((pos - env.target_pos) / MAX_REL_POS, -1, 1)
        want = np.array([DOWN_ROLL, DOWN_PITCH, yaw])
        if self.tilt:  # tip the fingers towards +y by `tilt` rad (rotation about world x)
            q = p.multiplyTransforms([0, 0, 0], p.getQuaternionFromEuler([self.tilt, 0, 0]), [0, 0, 0],
                                     p.getQuaternionFromEuler(want.tolist()))[1]
            want = np.array(p.getEulerFromQuaternion(q))
        a[3:6] = np.clip(_wrap(want - env.target_euler) / MAX_REL_ORN, -1, 1)
        a[6] = grip
        return a

    def goto(self, pos, yaw: float, grip: float, tol: float = 0.008, max_steps: int = 60) -> Iterator[np.ndarray]:
        """Moves the tcp to ``pos`` (3,) m at ``yaw`` rad; stops when within ``tol`` m or after max_steps."""
        pos = np.asarray(pos, dtype=np.float64)
        want = np.array(p.getQuaternionFromEuler([DOWN_ROLL, DOWN_PITCH, yaw]))
        for _ in range(max_steps):
            tcp, quat = self.scene.tcp_pose()
            angle = 2 * np.arccos(min(1.0, abs(float(np.dot(quat, want)))))  # euler-free orientation error
            if np.linalg.norm(tcp - pos) < tol and (self.tilt or angle < 0.08):
                return
            yield self._action(pos, yaw, grip)

    def line(self, end, yaw: float, grip: float, speed: float = 0.5, max_steps: int = 80) -> Iterator[np.ndarray]:
        """Moves the target in a straight line to ``end`` at ``speed`` (fraction of 2 cm/step), then settles."""
        end = np.asarray(end, dtype=np.float64)
        for _ in range(max_steps):
            delta = end - self.env.target_pos
            if np.linalg.norm(delta) < 1e-4:
                break
            norm = np.linalg.norm(delta)
            step = delta if norm < speed * MAX_REL_POS else delta / norm * speed * MAX_REL_POS
            yield self._action(self.env.target_pos + step, yaw, grip)
        yield from self.goto(end, yaw, grip, tol=0.01, max_steps=10)

    def hold(self, grip: float, n: int) -> Iterator[np.ndarray]:
        yaw = float(self.env.target_euler[2])
        for _ in range(n):
            yield self._action(self.env.target_pos.copy(), yaw, grip)

    def tcp(self) -> np.ndarray:
        return self.scene.tcp_pose()[0]

    def _grasp_yaw(self, block: str, turn: float = 0.0) -> float:
        """A tcp yaw that closes the fingers across the block's 4 cm side, chosen near HOME_YAW - turn/2 so
        that a later turn of ``turn`` rad stays within the wrist's range."""
        _, orn = self.scene.block_pose(block)
        theta = p.getEulerFromQuaternion(orn.tolist())[2]
        period = np.pi / 2 if block == "block_blue" else np.pi  # the blue block is a cube
        base = theta  # fingers along the block's y axis <=> tcp yaw == block yaw (mod period)
        ref = HOME_YAW - turn / 2
        k = np.round((ref - base) / period)
        return float(base + k * period)

    def _pick(self, block: str, yaw: float, lift: float) -> Iterator[np.ndarray]:
        pos, _ = self.scene.block_pose(block)
        yield from self.goto(pos + [0, 0, 0.10], yaw, 1.0, tol=0.015)
        yield from self.line(pos + [0, 0, 0.003], yaw, 1.0, speed=0.6)
        yield from self.hold(-1.0, 8)
        yield from self.line(self.tcp() + [0, 0, lift], yaw, -1.0, speed=0.5)


class Expert(Motions):
    """Waypoint expert bound to one env. Use ``for a in Expert(env).plan(task): env.step(a)``."""

    def plan(self, task: str) -> Iterator[np.ndarray]:
        """Actions that solve ``task`` from the env's current state (generator; reads the sim as it goes). In a
        chain the state is what the previous subtask left (it ends at its first success): :meth:`_clear` first."""
        kind, *args = T.check_task(task)
        yield from self._clear(kind in ("place_object", "stack_objects"))
        if kind == "rotate_object":
            yield from self._rotate(args[0], np.deg2rad(args[1]) * 1.35)
        elif kind == "push_object":
            yield from self._push(args[0], np.sign(args[1]))
        elif kind == "lift_object":
            yield from self._lift(args[0])
        elif kind == "move_door_rel" and args[0] == "base__drawer":
            yield from self._drawer(args[1] > 0)
        elif kind == "move_door_rel":
            yield from self._slider(args[1] > 0)
        elif kind == "toggle_light" and args[0] == "lightbulb":
            yield from self._switch(args[2] == 1)
        elif kind == "toggle_light":
            yield from self._button()
        elif kind == "place_object":
            yield from self._place(args[1])
        elif kind == "stack_objects":
            yield from self._stack()
        elif kind == "unstack_objects":
            yield from self._unstack()
        elif kind == "push_object_into":
            yield from self._push_into_drawer(args[0])
        else:
            raise NotImplementedError(task)

    def _lift(self, block: str) -> Iterator[np.ndarray]:
        pos, _ = self.scene.block_pose(block)
        if pos[1] > 0.02 and pos[2] > 0.43:  # on the cabinet shelf: come in from the front, under its top
            s = self.scene
            door_lo, door_hi = p.getAABB(s.table, s.table_link["slide_link"], physicsClientId=s.client)
            if door_lo[0] - 0.07 < pos[0] < door_hi[0] + 0.07:  # a chain's door move stopped part way: finish it
                plank_x = s.link_position("plank_link")[0]
                yield from self._slider(left=pos[0] > plank_x)
            yield from self._pick_from_front(block)
            return
        yield from self._pick(block, self._grasp_yaw(block), 0.10)
        yield from self.hold(-1.0, 5)

    def _pick_from_front(self, block: str) -> Iterator[np.ndarray]:
        pos, _ = self.scene.block_pose(block)
        yaw = self._grasp_yaw(block)
        self.tilt = 0.3
        grasp = pos + [0, 0.0, 0.01]
        yield from self.goto(grasp + [0, -0.15, 0.04], yaw, 1.0, tol=0.015)
        yield from self.line(grasp + [0, -0.15, 0.0], yaw, 1.0, speed=0.5)
        yield from self.line(grasp, yaw, 1.0, speed=0.4)
        yield from self.hold(-1.0, 8)
        yield from self.line(self.tcp() + [0, 0, 0.05], yaw, -1.0, speed=0.3)
        yield from self.line(self.tcp() + [0, -0.12, 0.0], yaw, -1.0, speed=0.4)
        self.tilt = 0.0

    def run_lift(self, block: str) -> None:
        """Grasps and lifts ``block`` without recording (used to build place / stack start states)."""
        for a in self._lift(block):
            self.env.apply_action(a)

    def _rotate(self, block: str, turn: float) -> Iterator[np.ndarray]:
        yaw = self._grasp_yaw(block, turn)
        pos, _ = self.scene.block_pose(block)
        yield from self._pick(block, yaw, 0.025)
        for _ in range(40):
            if abs(_wrap(yaw + turn - self.env.target_euler[2])) < 0.02:
                break
            yield self._action(self.env.target_pos.copy(), yaw + turn, -1.0)
        yield from self.hold(-1.0, 5)
        yield from self.line(self.tcp() - [0, 0, 0.02], yaw + turn, -1.0, speed=0.4)
        yield from self.hold(1.0, 6)
        yield from self.line(self.tcp() + [0, 0, 0.08], yaw + turn, 1.0, speed=0.6)

    def _push(self, block: str, direction: float) -> Iterator[np.ndarray]:
        """Pushes ``block`` 10+ cm along x with the closed fingers, approaching from high above (the arm lags
        behind its target on the way and would sweep the block)."""
        pos, _ = self.scene.block_pose(block)
        half = self.scene.block_size[block][0] / 2
        start = pos + [-direction * (half + 0.05), 0, 0.0]
        yaw = HOME_YAW
        yield from self.goto(start + [0, 0, 0.13], yaw, -1.0, tol=0.015)
        yield from self.line(start + [0, 0, 0.02], yaw, -1.0, speed=0.6)
        yield from self.line(start + [direction * 0.19, 0, 0.02], yaw, -1.0, speed=0.35)
        yield from self.line(self.tcp() + [-direction * 0.03, 0, 0.0], yaw, -1.0, speed=0.4)
        yield from self.line(self.tcp() + [0, 0, 0.08], yaw, -1.0, speed=0.6)

    def _drawer(self, open_: bool) -> Iterator[np.ndarray]:
        q = self.scene.joint_positions()["base__drawer"]
        x, z = 0.18 + self.off["base__drawer"], 0.365
        if open_:  # fingers into the gap between handle bar and drawer front, then pull
            y = -0.218 - q
            yield from self.goto([x, y, 0.5], HOME_YAW, -1.0, tol=0.015)
            yield from self.line([x, y, z], HOME_YAW, -1.0, speed=0.6)
            yield from self.line([x, y - 0.17, z], HOME_YAW, -1.0, speed=0.4)
        else:  # fingers in front of the handle bar, then push it in
            y = -0.262 - q - 0.03
            yield from self.goto([x, y, 0.5], HOME_YAW, -1.0, tol=0.015)
            yield from self.line([x, y, z], HOME_YAW, -1.0, speed=0.6)
            yield from self.line([x, -0.262 - 0.02, z], HOME_YAW, -1.0, speed=0.4)
        yield from self.line(self.tcp() + [0, -0.03, 0.12], HOME_YAW, -1.0, speed=0.6)

    def _slider(self, left: bool) -> Iterator[np.ndarray]:
        q = self.scene.joint_positions()["base__slide"]
        y, z = 0.012, 0.57
        if left:  # fingers right of the handle, push left (door joint increases)
            x = 0.07 - q + 0.035 + self.off["base__slide"]
            end = x - 0.21
        else:
            x = 0.01 - q - 0.035 + self.off["base__slide"]
            end = x + 0.21
        yield from self.goto([x, y - 0.05, 0.7], HOME_YAW + np.pi / 2, -1.0, tol=0.015)
        yield from self.line([x, y, z], HOME_YAW + np.pi / 2, -1.0, speed=0.6)
        yield from self.line([end, y, z], HOME_YAW + np.pi / 2, -1.0, speed=0.4)
        yield from self.line(self.tcp() + [0, -0.08, 0.05], HOME_YAW + np.pi / 2, -1.0, speed=0.6)

    def _switch(self, on: bool) -> Iterator[np.ndarray]:
        q = self.scene.joint_positions()["base__switch"]
        bar = np.array([0.25 + self.off["base__switch"], 0.004, 0.525]) + SWITCH_RAIL * q  # bar's front-middle
        yaw = HOME_YAW
        if on:  # finger tips just below the bar's middle, touch its front, then push up the rail
            start = bar + [0, -0.04, -0.005]
            contact = bar + [0, -0.01, -0.005]
            end = contact + SWITCH_RAIL * 0.11
        else:  # fingers in the gap behind the bar, pull down the rail
            start = contact = bar + [0, 0.028, 0.0]
            end = start - SWITCH_RAIL * 0.11
        self.tilt = 0.5 if on else 0.0  # reaching up the rail is at the arm's limit: lean the fingers forward
        yield from self.goto(start + [0, -0.04 if on else 0.0, 0.1], yaw, -1.0, tol=0.015)
        yield from self.line(start, yaw, -1.0, speed=0.5)
        yield from self.line(contact, yaw, -1.0, speed=0.3)
        yield from self.line(end, yaw, -1.0, speed=0.35)
        yield from self.line(self.tcp() + [0, -0.06, 0.06], yaw, -1.0, speed=0.6)
        self.tilt = 0.0

    def _button(self) -> Iterator[np.ndarray]:
        top = np.array([-0.12 + self.off["base__button"], -0.12, 0.487])
        yield from self.goto(top + [0, 0, 0.08], HOME_YAW, -1.0, tol=0.015)
        yield from self.line(top + [0, 0, 0.0], HOME_YAW, -1.0, speed=0.5)
        yield from self.line(top + [0, 0, -0.03], HOME_YAW, -1.0, speed=0.3)
        yield from self.line(top + [0, 0, 0.08], HOME_YAW, -1.0, speed=0.6)

    def _clear(self, keep_block: bool) -> Iterator[np.ndarray]:
        """Lets go of a held block the task does not use (``keep_block``: place / stack need it), then, when the
        fingers are low (below 0.54 m), backs them away (out of the cabinet when inside it) and lifts them. Nothing
        from a task episode's start pose (tcp 0.57 m up, nothing held)."""
        held = self._held_or_none()
        yaw, grip = float(self.env.target_euler[2]), -1.0 if keep_block else 1.0
        if held and not keep_block:
            yield from self._set_down(held, yaw)
        tcp = self.tcp()
        if tcp[2] >= 0.54:
            return
        back = 0.12 if tcp[1] > -0.03 and tcp[2] > 0.43 else 0.06  # fingers under the cabinet's top: all the way out
        yield from self.line(tcp + [0, -back, 0], yaw, grip, speed=0.5)
        yield from self.line([tcp[0], tcp[1] - back, 0.58], yaw, grip, speed=0.6)

    def _set_down(self, block: str, yaw: float) -> Iterator[np.ndarray]:
        """Carries a held block to the free table spot nearest the fingers, lowers it until it rests on something
        and lets go (a dropped block may land on its side or on another block)."""
        s = self.scene
        lo, hi = (np.array(v) for v in s.cfg["surfaces"]["table"])
        others = [s.block_pose(b)[0][:2] for b in s.blocks if b != block]
        tcp = self.tcp()
        grid = [np.array([x, y]) for x in np.linspace(lo[0] + 0.04, hi[0] - 0.04, 8)
                for y in np.linspace(lo[1] + 0.02, hi[1] - 0.02, 3)]
        free = [g for g in grid if all(np.linalg.norm(g - o) > 0.09 for o in others)] or grid
        spot = min(free, key=lambda g: np.linalg.norm(g - tcp[:2]))
        if tcp[2] < 0.54 and np.linalg.norm(spot - tcp[:2]) > 0.02:  # lift clear of the others before carrying
            yield from self.line([*tcp[:2], 0.56], yaw, -1.0, speed=0.5)
        yield from self.goto([*spot, max(self.tcp()[2], 0.52)], yaw, -1.0, tol=0.015)
        for _ in range(30):
            if any(body != "robot" for body, _ in s.contacts(s.blocks[block])):
                break
            yield self._action(self.env.target_pos + [0, 0, -0.006], yaw, -1.0)
        yield from self.hold(1.0, 8)

    def _held_or_none(self) -> str | None:
        """The block between the fingers, if any."""
        return next((b for b, body in self.scene.blocks.items() if ("robot", "finger") in self.scene.contacts(body)),
                    None)

    def _held_block(self) -> str:
        held = self._held_or_none()
        if held is None:
            raise RuntimeError("no block is held")
        return held

    def _place(self, link: str) -> Iterator[np.ndarray]:
        yaw = float(self.env.target_euler[2])
        if link == "drawer_link":
            q = self.scene.joint_positions()["base__drawer"]
            dest = np.array([0.18 + self.off["base__drawer"], -0.265 - q + 0.11, 0.40])
        else:
            q = self.scene.joint_positions()["base__slide"]
            right = q < 0.4 * self.scene.joint_upper["base__slide"]  # door at the right: the left half is open
            dest = np.array([slider_spot(self.scene, "slider_left" if right else "slider_right"), 0.085, 0.51])
        tcp = self.tcp()
        above = dest + [0, -0.12 if link != "drawer_link" else 0, 0.1]
        if tcp[2] < 0.58:  # carry the block high: a low path sweeps the button or the other blocks
            yield from self.line([tcp[0], tcp[1], 0.6], yaw, -1.0, speed=0.6)
        yield from self.goto([above[0], above[1], max(above[2], 0.6)], yaw, -1.0, tol=0.02)
        yield from self.line(above, yaw, -1.0, speed=0.5)
        if link != "drawer_link":
            yield from self.line(dest + [0, -0.12, 0.0], yaw, -1.0, speed=0.5)
        yield from self.line(dest, yaw, -1.0, speed=0.4)
        yield from self.hold(1.0, 8)
        yield from self.line(self.tcp() + [0, -0.12 if link != "drawer_link" else 0, 0.0], yaw, 1.0, speed=0.5)
        yield from self.line(self.tcp() + [0, 0, 0.1], yaw, 1.0, speed=0.6)

    def _stack(self) -> Iterator[np.ndarray]:
        held = self._held_block()
        others = [b for b in self.scene.blocks if b != held]
        open_top = [b for b in others if self.scene.block_pose(b)[0][1] <= 0.02]  # not under the cabinet's top
        below = min(open_top or others, key=lambda b: np.linalg.norm(self.scene.block_pose(b)[0][:2] - self.tcp()[:2]))
        pos, _ = self.scene.block_pose(below)
        yaw = float(self.env.target_euler[2])
        top_z = pos[2] + self.scene.block_size[below][2] / 2 + self.scene.block_size[held][2] / 2 + 0.01
        yield from self.goto([pos[0], pos[1], top_z + 0.08], yaw, -1.0, tol=0.01)
        yield from self.line([pos[0], pos[1], top_z], yaw, -1.0, speed=0.3)
        yield from self.hold(1.0, 8)
        yield from self.line(self.tcp() + [0, 0, 0.1], yaw, 1.0, speed=0.6)

    def _unstack(self) -> Iterator[np.ndarray]:
        blocks = sorted(self.scene.blocks, key=lambda b: -self.scene.block_pose(b)[0][2])
        top = blocks[0]
        yield from self._pick(top, self._grasp_yaw(top), 0.08)
        yaw = float(self.env.target_euler[2])
        yield from self.line(self.tcp() + [-0.12 if self.tcp()[0] > 0.15 else 0.12, 0, 0], yaw, -1.0, speed=0.5)
        yield from self.hold(-1.0, 3)

    def _push_into_drawer(self, blocks: list[str]) -> Iterator[np.ndarray]:
        on_table = [b for b in blocks if ("table", "base_link") in self.scene.contacts(self.scene.blocks[b])]
        block = min(on_table or blocks, key=lambda b: self.scene.block_pose(b)[0][1])
        pos, _ = self.scene.block_pose(block)
        start = pos + [0, 0.06, 0.012]
        yaw = HOME_YAW
        yield from self.goto(start + [0, 0, 0.08], yaw, -1.0, tol=0.015)
        yield from self.line(start, yaw, -1.0, speed=0.5)
        yield from self.line([pos[0], -0.25, start[2]], yaw, -1.0, speed=0.35)
        yield from self.line(self.tcp() + [0, 0, 0.1], yaw, -1.0, speed=0.6)


def slider_spot(scene: CalvinScene, half: str) -> float:
    """x (m) of a free place on the cabinet shelf's ``half`` ("slider_left" / "slider_right"): of the spots clear of
    the sliding door, the one farthest from the blocks already on the shelf."""
    lo, hi = (np.array(v) for v in scene.cfg["surfaces"][half])
    others = [scene.block_pose(b)[0][0] for b, body in scene.blocks.items()
              if ("table", "plank_link") in scene.contacts(body)]
    door_lo, door_hi = p.getAABB(scene.table, scene.table_link["slide_link"], physicsClientId=scene.client)
    xs = [x for x in np.linspace(lo[0] + 0.03, hi[0] - 0.03, 9)
          if not door_lo[0] - 0.04 < x < door_hi[0] + 0.04] or [float((lo[0] + hi[0]) / 2)]
    if not others:
        return float(xs[len(xs) // 2])
    return float(max(xs, key=lambda x: min(abs(x - o) for o in others)))


@dataclasses.dataclass
class Episode:
    """One recorded rollout. Arrays are stacked over T steps: ``rgb_static`` (T, S, S, 3) uint8,
    ``rgb_gripper`` (T, G, G, 3) uint8, ``robot_obs`` (T, 15), ``scene_obs`` (T, 24), ``actions`` (T, 7) float32
    (observation t is what the expert saw before action t) and, when the env renders segmentation,
    ``mask_static`` (T, S, S) bool ground-truth masks (:mod:`ivm_ros_sim.calvin.masks`)."""

    task: str
    instruction: str
    seed: int
    distraction: str
    success: bool
    steps: int
    frames: dict[str, np.ndarray]
    actions: np.ndarray


RECORDED = ("rgb_static", "rgb_gripper", "robot_obs", "scene_obs")


def run_plan(env: CalvinSceneEnv, task: str, obs: dict[str, np.ndarray], max_steps: int, record: bool,
             parts: Any = None) -> tuple[dict[str, list[np.ndarray]], list[np.ndarray], dict[str, np.ndarray],
                                         dict[str, Any], int]:
    """Steps the expert's plan for ``task`` from observation ``obs`` until the oracle's first success (CALVIN
    stops a subtask there), the plan's end or ``max_steps``.

    Returns (frames: key -> list of the observations each action was taken from (RECORDED, plus ``mask_static``
    when ``parts`` is given), actions: list of (7,) float32, last observation, last info, steps taken); the lists
    are empty unless ``record``."""
    frames: dict[str, list[np.ndarray]] = {k: [] for k in (*RECORDED, "mask_static")}
    actions: list[np.ndarray] = []
    info: dict[str, Any] = {"success": False}
    steps = 0
    for a in Expert(env).plan(task):
        if record:
            for k in RECORDED:
                frames[k].append(obs[k])
            if parts is not None:
                frames["mask_static"].append(mask_from_segmentation(obs["seg_static"], parts))
            actions.append(np.asarray(a, np.float32))
        obs, _, done, _, info = env.step(a)
        steps += 1
        if done or steps >= max_steps:
            break
    return frames, actions, obs, info, steps


def rollout(env: CalvinSceneEnv, task: str, seed: int, distraction: str = "none", record: bool = False,
            instruction_split: str = "eval", max_steps: int = 360) -> Episode:
    """Resets ``env`` to (task, seed, distraction) and runs the expert until the oracle reports success (as
    CALVIN's evaluation does), the plan ends or ``max_steps``. Records observations and actions if asked."""
    obs, info = env.reset(seed=seed, task=task, distraction=distraction,
                          options={"instruction_split": instruction_split})
    parts = relevant_parts(env.scene, task, env.start_state) if record and env.segmentation else None
    frames, actions, obs, info, steps = run_plan(env, task, obs, max_steps, record, parts)
    return Episode(task, env.instruction, seed, distraction, bool(info["success"]), steps,
                   {k: np.stack(v) for k, v in frames.items() if v},
                   np.stack(actions) if actions else np.zeros((0, 7), np.float32))
