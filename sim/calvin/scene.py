"""CALVIN's scenes (D, the evaluation scene, by default; A, B, C) in PyBullet, built from the shared CALVIN
assets (URDFs and YAML only, no CALVIN code).

Frames and units: world frame with z up, metres, radians, seconds. The robot stands at x < 0, y < 0 and
faces +y; "left" is -x and "right" is +x, as in CALVIN's task names.

State vectors follow CALVIN's documented layout:

* ``robot_obs`` (15,) float64: tcp position (3), tcp orientation as xyz euler (3), gripper opening width in
  metres (1), the 7 arm joint angles (7), last gripper action (1; -1 closed, +1 open).
* ``scene_obs`` (24,) float64: slider door, drawer, button, switch joint positions (metres), lightbulb and
  LED state (0/1), then position (3) and xyz euler (3) of the red, blue and pink blocks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pybullet as p
import yaml

from ivm_ros.assets import find_calvin_assets

#: Names in scene_obs order.
JOINTS = ("base__slide", "base__drawer", "base__button", "base__switch")
LIGHTS = ("lightbulb", "led")
BLOCKS = ("block_red", "block_blue", "block_pink")
#: Table link name -> PyBullet link index (checked against calvin_table_D.urdf at load time).
TABLE_LINKS = ("button_link", "switch_link", "slide_link", "drawer_link", "led_link", "light_link", "plank_link")

ARM_JOINTS = tuple(range(7))
FINGER_JOINTS = (9, 11)  # conf/robot/panda_longer_finger.yaml: gripper_joint_ids
FINGER_OPEN = 0.04  # m per finger (conf/robot/panda.yaml: gripper_joint_limits [0, 0.04])
TCP_LINK = 15  # conf/robot/panda_longer_finger.yaml: tcp_link_id
GRIPPER_CAM_LINK = 14  # link "gripper_cam" in panda_longer_finger.urdf
ROBOT_FINGER_LINKS = (9, 10, 11, 12)

#: URDF names of ARM_JOINTS + FINGER_JOINTS (what :meth:`CalvinScene.robot_joint_states` returns).
ROBOT_JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8)) + ("panda_finger_joint1", "panda_finger_joint2")
#: Labels of robot_obs (15,) and scene_obs (24,), in order.
ROBOT_OBS_LABELS = ("tcp_x", "tcp_y", "tcp_z", "tcp_roll", "tcp_pitch", "tcp_yaw", "gripper_width",
                    *(f"arm_q{i}" for i in range(1, 8)), "gripper_action")
SCENE_OBS_LABELS = ("slider", "drawer", "button", "switch", "lightbulb", "led",
                    *(f"{b}_{k}" for b in BLOCKS for k in ("x", "y", "z", "roll", "pitch", "yaw")))

PHYSICS_HZ = 240
CONTROL_HZ = 30
GRAVITY = 9.8  # m/s^2, as the official env sets it
#: Joint friction of the sliding door, drawer and switch (a zero-velocity motor, N) and the button's spring (a
#: position motor towards 0 with PyBullet's default gains, N): the official env's MAX_FORCE for all four.
JOINT_FRICTION = {"base__slide": 4.0, "base__drawer": 4.0, "base__switch": 4.0}
BUTTON_SPRING_FORCE = 4.0


def shared_dir() -> Path:
    """The CALVIN asset folder (``ivm_ros.assets.find_calvin_assets``: $IVM_ROS_SHARED/calvin, the per-user folder
    ``ivm-ros sim-assets`` installs to, the install's share/, ``<checkout>/../shared/calvin``, or beside a colcon
    workspace's checkout); raises
    FileNotFoundError naming every place and the fix."""
    return find_calvin_assets()


def robot_urdf(filename: str, visual: str = "fast") -> str:
    """Path of the robot URDF to load. ``"full"``: the CALVIN file as is (~100k visual triangles).
    ``"fast"``: a derived copy in a cache folder whose arm and hand visuals are the collision meshes
    (~3.5k triangles): 2-3x faster tiny-renderer frames, same kinematics, dynamics and camera poses."""
    src = shared_dir() / "data" / filename
    if visual == "full":
        return str(src)
    text = src.read_text()
    meshes = (src.parent / "meshes").resolve()
    text = re.sub(r"package://meshes/visual/(link\d|hand)\.obj", lambda m: f"{meshes}/collision/{m.group(1)}.obj", text)
    text = text.replace("package://meshes/", f"{meshes}/")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ivm_ros_sim"
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    out = cache / f"{src.stem}_fast_{digest}.urdf"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return str(out)


def _load_yaml(rel: str) -> dict[str, Any]:
    with open(shared_dir() / rel) as f:
        return yaml.safe_load(f)


@dataclasses.dataclass(frozen=True)
class CameraSpec:
    """A pinhole camera. Static cameras use look_from/look_at/up; the gripper camera follows a robot link."""

    name: str
    width: int
    height: int
    fov: float  # vertical field of view, degrees
    near: float
    far: float
    look_from: tuple[float, float, float] | None = None
    look_at: tuple[float, float, float] | None = None
    up: tuple[float, float, float] | None = None

    def intrinsics(self) -> np.ndarray:
        """(3, 3) float64 pinhole matrix K in pixels (what a ROS CameraInfo ``k`` holds, row-major)."""
        fy = self.height / (2.0 * np.tan(np.deg2rad(self.fov) / 2.0))
        fx = fy  # square pixels; PyBullet's projection uses aspect = width / height
        return np.array([[fx, 0.0, self.width / 2.0], [0.0, fy, self.height / 2.0], [0.0, 0.0, 1.0]])

    def projection(self) -> list[float]:
        return p.computeProjectionMatrixFOV(self.fov, self.width / self.height, self.near, self.far)


def camera_specs(static_size: int = 200, gripper_size: int = 84) -> dict[str, CameraSpec]:
    """CameraSpecs from conf/cameras/cameras/{static,gripper}.yaml with the requested square sizes."""
    st = _load_yaml("conf/cameras/cameras/static.yaml")
    gr = _load_yaml("conf/cameras/cameras/gripper.yaml")
    return {
        "static": CameraSpec("static", static_size, static_size, float(st["fov"]), float(st["nearval"]),
                             float(st["farval"]), tuple(st["look_from"]), tuple(st["look_at"]), tuple(st["up_vector"])),
        "gripper": CameraSpec("gripper", gripper_size, gripper_size, float(gr["fov"]), float(gr["nearval"]),
                              float(gr["farval"])),
    }


@dataclasses.dataclass
class RenderSettings:
    """Tiny-renderer lighting; distractors change these (see :mod:`ivm_ros_sim.calvin.distractors`).

    The defaults are PyBullet's own tiny-renderer defaults (direction (-50, 30, 100), white, ambient 0.6,
    diffuse 0.35, specular 0.05, no shadow), which is what the official calvin_env renders with: it passes no
    light arguments. They are passed explicitly on every call because PyBullet keeps the last light settings of
    a client (a distracted episode's light would otherwise stay). Matches the official tiny renderer within
    1 grey level (test/sim/calvin/test_fidelity_render.py)."""

    light_direction: tuple[float, float, float] = (-50.0, 30.0, 100.0)
    light_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.35
    specular: float = 0.05
    shadow: bool = False

    def kwargs(self) -> dict[str, Any]:
        return dict(lightDirection=list(self.light_direction), lightColor=list(self.light_color),
                    lightAmbientCoeff=self.ambient, lightDiffuseCoeff=self.diffuse,
                    lightSpecularCoeff=self.specular, shadow=int(self.shadow))


#: CALVIN's four scenes: A, B, C (the ABC->D split's training scenes) and D (the evaluation scene).
SCENES = ("A", "B", "C", "D")


def check_scene(scene: str) -> str:
    """``scene`` itself; ValueError naming the valid scenes otherwise."""
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; valid scenes: {', '.join(SCENES)}")
    return scene


def _joint_origins(scene: str) -> dict[str, np.ndarray]:
    """Table joint name -> its origin (3,) in the table's URDF, unscaled."""
    import xml.etree.ElementTree as ET

    cfg = _load_yaml(f"conf/scene/calvin_scene_{scene}.yaml")
    root = ET.parse(shared_dir() / "data" / cfg["objects"]["fixed_objects"]["table"]["file"]).getroot()
    return {j.get("name"): np.array([float(v) for v in j.find("origin").get("xyz").split()])
            for j in root.findall("joint")}


def scene_offsets(scene: str) -> dict[str, float]:
    """How far (m, along world x) each mechanism of ``scene`` sits from where it is in scene D: the table joints
    (``base__drawer``, ``base__slide``, ``base__switch``, ``base__button``, ``base__plank`` = the cabinet shelf) and
    ``table`` (the table top's free area, its x minimum). The four tables differ only by these x shifts."""
    check_scene(scene)
    cfg, ref = _load_yaml(f"conf/scene/calvin_scene_{scene}.yaml"), _load_yaml("conf/scene/calvin_scene_D.yaml")
    scale = float(cfg["global_scaling"])
    mine, base = _joint_origins(scene), _joint_origins("D")
    out = {name: float((mine[name][0] - base[name][0]) * scale) for name in base}
    out["table"] = float(cfg["surfaces"]["table"][0][0] - ref["surfaces"]["table"][0][0])
    return out


class CalvinScene:
    """PyBullet world of a CALVIN scene (``scene``: A, B, C or D; D by default): table (drawer, slider, button -> LED,
    switch -> lightbulb; each scene's own table, placed as its YAML says), three blocks (each scene's own sizes)
    and a Franka Panda with the longer fingers. One instance owns one DIRECT PyBullet client.

    Mechanisms (as the official calvin_env's, see :meth:`update_mechanisms`): the button is spring-loaded and
    toggles the LED each time it is seen pressed past half its travel; the switch stays where it is pushed and the
    lightbulb turns on / off when it crosses half its travel; drawer, slider and switch have joint friction.
    """

    LIGHT_ON = {"lightbulb": (1.0, 1.0, 0.0, 1.0), "led": (0.0, 1.0, 0.0, 1.0)}  # calvin_scene_D.yaml colours
    LIGHT_OFF = (1.0, 1.0, 1.0, 1.0)

    def __init__(self, static_size: int = 200, gripper_size: int = 84, robot_visual: str = "fast",
                 scene: str = "D") -> None:
        if robot_visual not in ("fast", "full"):
            raise ValueError(f"robot_visual must be 'fast' or 'full', got {robot_visual!r}")
        self.name = check_scene(scene)
        self.robot_visual = robot_visual
        self.root = shared_dir()
        self.cfg = _load_yaml(f"conf/scene/calvin_scene_{scene}.yaml")
        self.offsets = scene_offsets(scene)
        robot_cfg = {**_load_yaml("conf/robot/panda.yaml"), **_load_yaml("conf/robot/panda_longer_finger.yaml")}
        self.robot_cfg = robot_cfg
        self.cameras = camera_specs(static_size, gripper_size)
        self.render_settings = RenderSettings()
        self.client = p.connect(p.DIRECT)
        self._load()

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        """Builds the world. Bodies are created in the official env's order (robot, its base cylinder, red / blue /
        pink block, table, plane: ids 0..6), which is also the order PyBullet's solver visits them in; with
        another order contacts come out slightly different (pressing the button: 2.9 instead of 0.7 mm)."""
        c, data, scale = self.client, self.root / "data", float(self.cfg["global_scaling"])
        p.resetSimulation(physicsClientId=c)
        p.setGravity(0, 0, -GRAVITY, physicsClientId=c)
        p.setTimeStep(1.0 / PHYSICS_HZ, physicsClientId=c)
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=c)
        urdf = robot_urdf(self.robot_cfg["filename"], self.robot_visual)
        self.robot = p.loadURDF(urdf, self.cfg["robot_base_position"],
                                p.getQuaternionFromEuler(self.cfg["robot_base_orientation"]), useFixedBase=True,
                                physicsClientId=c)
        _couple_fingers(self)
        self.robot_base = _add_base_cylinder(self)
        self.blocks: dict[str, int] = {}
        for name in BLOCKS:
            spec = self.cfg["objects"]["movable_objects"][name]
            self.blocks[name] = p.loadURDF(str(data / spec["file"]), [0, 0, -1], globalScaling=scale,
                                           physicsClientId=c)
        self.block_size = {n: self._aabb_extent(b) for n, b in self.blocks.items()}
        table = self.cfg["objects"]["fixed_objects"]["table"]
        self.table = p.loadURDF(str(data / table["file"]), table["initial_pos"],
                                p.getQuaternionFromEuler(table["initial_orn"]), globalScaling=scale,
                                useFixedBase=True, physicsClientId=c)
        names = [p.getJointInfo(self.table, j, physicsClientId=c)[1].decode() for j in range(len(TABLE_LINKS))]
        self.table_joint = {n: j for j, n in enumerate(names)}
        links = [p.getJointInfo(self.table, j, physicsClientId=c)[12].decode() for j in range(len(TABLE_LINKS))]
        assert tuple(links) == TABLE_LINKS, links
        self.table_link = {n: j for j, n in enumerate(links)} | {"base_link": -1}
        self.joint_upper = {n: p.getJointInfo(self.table, self.table_joint[n], physicsClientId=c)[9] for n in JOINTS}
        self.plane = p.loadURDF(str(data / "plane/plane.urdf"), physicsClientId=c)
        self.q_home = np.array(self.cfg["robot_initial_joint_positions"], dtype=np.float64)
        self.lights = {"lightbulb": False, "led": False}
        self._button_down = False
        self._switch_up = False
        self.gripper_action = 1.0
        self.tcp_observed: tuple[np.ndarray, np.ndarray] | None = None  # see PandaController.physics_steps (env.py)
        self.body_names = {self.table: "table", self.robot: "robot", self.plane: "plane"} | {
            b: n for n, b in self.blocks.items()}

    def _aabb_extent(self, body: int) -> np.ndarray:
        lo, hi = p.getAABB(body, -1, physicsClientId=self.client)
        return np.array(hi) - np.array(lo)

    def close(self) -> None:
        """Disconnects the PyBullet client. Safe to call twice."""
        if self.client is not None and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = None

    # ------------------------------------------------------------------ state
    def set_state(self, scene_obs: np.ndarray, q_arm: np.ndarray | None = None, gripper_open: bool = True,
                  gripper_width: float | None = None) -> None:
        """Teleports the world to ``scene_obs`` (24,) and the arm to ``q_arm`` (7,) rad (home when None).

        Velocities are zeroed; the lights take the given 0/1 states.
        """
        s = np.asarray(scene_obs, dtype=np.float64)
        if s.shape != (24,) or not np.all(np.isfinite(s)):
            raise ValueError(f"scene_obs must be 24 finite numbers, got shape {s.shape}")
        c = self.client
        for i, name in enumerate(JOINTS):
            p.resetJointState(self.table, self.table_joint[name], float(s[i]), 0.0, physicsClientId=c)
        for i, name in enumerate(LIGHTS):
            self.lights[name] = bool(s[4 + i] > 0.5)
        self._button_down = False  # as after any step with the button released: pressed in a start state toggles
        self._switch_up = False  # the switch's logical state starts "down": the bulb follows at the first step
        for i, name in enumerate(BLOCKS):
            pose = s[6 + 6 * i: 12 + 6 * i]
            p.resetBasePositionAndOrientation(self.blocks[name], pose[:3].tolist(),
                                              p.getQuaternionFromEuler(pose[3:].tolist()), physicsClientId=c)
            p.resetBaseVelocity(self.blocks[name], [0, 0, 0], [0, 0, 0], physicsClientId=c)
        q = self.q_home if q_arm is None else np.asarray(q_arm, dtype=np.float64)
        for j, v in zip(ARM_JOINTS, q):
            p.resetJointState(self.robot, j, float(v), 0.0, physicsClientId=c)
        width = (FINGER_OPEN if gripper_open else 0.0) if gripper_width is None else float(
            np.clip(gripper_width / 2, 0.0, FINGER_OPEN))
        for j in FINGER_JOINTS:
            p.resetJointState(self.robot, j, width, 0.0, physicsClientId=c)
        self.gripper_action = 1.0 if gripper_open else -1.0
        self.tcp_observed = None
        self._apply_joint_friction()
        self._update_light_visuals()

    def _apply_joint_friction(self) -> None:
        """Joint friction (door, drawer, switch) and the button's spring (:data:`JOINT_FRICTION`)."""
        c = self.client
        for name, force in JOINT_FRICTION.items():
            p.setJointMotorControl2(self.table, self.table_joint[name], p.VELOCITY_CONTROL, targetVelocity=0.0,
                                    force=force, physicsClientId=c)
        p.setJointMotorControl2(self.table, self.table_joint["base__button"], p.POSITION_CONTROL, targetPosition=0.0,
                                force=BUTTON_SPRING_FORCE, physicsClientId=c)

    def _update_light_visuals(self) -> None:
        for name, link in (("lightbulb", "light_link"), ("led", "led_link")):
            color = self.LIGHT_ON[name] if self.lights[name] else self.LIGHT_OFF
            p.changeVisualShape(self.table, self.table_link[link], rgbaColor=color, physicsClientId=self.client)

    def update_mechanisms(self) -> None:
        """Button -> LED and switch -> lightbulb from the current joint positions (once per control step), as the
        official env: "pressed" / "up" is past half of the joint's travel; the LED toggles when the button
        becomes pressed; the bulb turns on when the switch goes up and off when it goes down (a bulb given on with
        the switch down at a reset stays on until the switch goes up and down again)."""
        js = self.joint_positions()
        changed = False
        pressed = js["base__button"] > 0.5 * self.joint_upper["base__button"]
        if pressed and not self._button_down:
            self.lights["led"] = not self.lights["led"]
            changed = True
        self._button_down = pressed
        up = js["base__switch"] > 0.5 * self.joint_upper["base__switch"]
        if up != self._switch_up and self.lights["lightbulb"] != up:
            self.lights["lightbulb"] = up
            changed = True
        self._switch_up = up
        if changed:
            self._update_light_visuals()

    def link_position(self, link: str) -> np.ndarray:
        """World position (3,) of a table link (e.g. ``plank_link``, ``drawer_link``) now."""
        return np.array(p.getLinkState(self.table, self.table_link[link], computeForwardKinematics=True,
                                       physicsClientId=self.client)[4])

    def joint_positions(self) -> dict[str, float]:
        """Table joint positions (metres) by joint name."""
        return {n: p.getJointState(self.table, self.table_joint[n], physicsClientId=self.client)[0] for n in JOINTS}

    def block_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), quaternion xyzw (4,)) of a block."""
        pos, orn = p.getBasePositionAndOrientation(self.blocks[name], physicsClientId=self.client)
        return np.array(pos), np.array(orn)

    def scene_obs(self) -> np.ndarray:
        """(24,) float64 CALVIN scene_obs (see module docstring)."""
        js = self.joint_positions()
        out = [js[n] for n in JOINTS] + [float(self.lights[n]) for n in LIGHTS]
        for name in BLOCKS:
            pos, orn = self.block_pose(name)
            out += list(pos) + list(p.getEulerFromQuaternion(orn.tolist()))
        return np.array(out, dtype=np.float64)

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(tcp position (3,), tcp quaternion xyzw (4,)) in the world frame."""
        ls = p.getLinkState(self.robot, TCP_LINK, computeForwardKinematics=True, physicsClientId=self.client)
        return np.array(ls[4]), np.array(ls[5])

    def arm_q(self) -> np.ndarray:
        """(7,) float64 arm joint angles, rad."""
        return np.array([s[0] for s in p.getJointStates(self.robot, ARM_JOINTS, physicsClientId=self.client)])

    def gripper_width(self) -> float:
        return float(sum(s[0] for s in p.getJointStates(self.robot, FINGER_JOINTS, physicsClientId=self.client)))

    def robot_joint_states(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, velocities, applied motor efforts), each (9,) float64, for :data:`ROBOT_JOINT_NAMES`
        (7 arm joints in rad, rad/s, Nm; 2 finger joints in m, m/s, N)."""
        states = p.getJointStates(self.robot, ARM_JOINTS + FINGER_JOINTS, physicsClientId=self.client)
        return tuple(np.array([s[i] for s in states], dtype=np.float64) for i in (0, 1, 3))

    def robot_obs(self) -> np.ndarray:
        """(15,) float64 CALVIN robot_obs (see module docstring). The tcp pose is ``tcp_observed`` when the env
        set one (the pose one physics step earlier, as the official env reports it), else the current one."""
        pos, orn = self.tcp_pose() if self.tcp_observed is None else self.tcp_observed
        return np.concatenate([pos, p.getEulerFromQuaternion(orn.tolist()), [self.gripper_width()], self.arm_q(),
                               [self.gripper_action]])

    # ------------------------------------------------------------------ contacts
    def contacts(self, body: int) -> set[tuple[str, str]]:
        """Named things ``body`` touches: {(body name, link name)}; table links by URDF name, robot links as
        ``"finger"`` or ``"arm"``, blocks as ``"base_link"``; unnamed bodies (distractors) as ("other", "")."""
        found = set()
        link_names = {v: k for k, v in self.table_link.items()}
        for cp in p.getContactPoints(bodyA=body, physicsClientId=self.client):
            other, link = cp[2], cp[4]
            name = self.body_names.get(other, "other")
            if other == self.table:
                found.add(("table", link_names.get(link, str(link))))
            elif other == self.robot:
                found.add(("robot", "finger" if link in ROBOT_FINGER_LINKS else "arm"))
            elif name == "other":
                found.add(("other", ""))
            else:
                found.add((name, "base_link"))
        return found

    # ------------------------------------------------------------------ rendering
    def view_matrix(self, camera: str) -> list[float]:
        spec = self.cameras[camera]
        if camera == "static":
            return p.computeViewMatrix(spec.look_from, spec.look_at, spec.up)
        ls = p.getLinkState(self.robot, GRIPPER_CAM_LINK, computeForwardKinematics=True, physicsClientId=self.client)
        pos = np.array(ls[4])
        rot = np.array(p.getMatrixFromQuaternion(ls[5])).reshape(3, 3)
        return p.computeViewMatrix(pos.tolist(), (pos + rot[:, 1]).tolist(), (-rot[:, 2]).tolist())

    def render(self, camera: str, segmentation: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """RGB (H, W, 3) uint8 and, when asked, segmentation (H, W) int32 with value
        ``body_id + ((link_index + 1) << 24)`` (-1 for background; decode with :func:`decode_segmentation`)."""
        spec = self.cameras[camera]
        flags = p.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX if segmentation else p.ER_NO_SEGMENTATION_MASK
        _, _, rgba, _, seg = p.getCameraImage(spec.width, spec.height, self.view_matrix(camera), spec.projection(),
                                              renderer=p.ER_TINY_RENDERER, flags=flags, physicsClientId=self.client,
                                              **self.render_settings.kwargs())
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(spec.height, spec.width, 4)[:, :, :3].copy()
        segm = np.asarray(seg, dtype=np.int32).reshape(spec.height, spec.width) if segmentation else None
        return rgb, segm


def set_observed_state(scene: CalvinScene, robot_obs: np.ndarray, scene_obs: np.ndarray) -> None:
    """Teleports ``scene`` to CALVIN's observation vectors: ``scene_obs`` (24,) and the arm of ``robot_obs`` (15,):
    its joints (entries 7-13, rad), gripper width (6, m) and gripper action (14, > 0 open)."""
    scene.set_state(scene_obs, q_arm=robot_obs[7:14], gripper_open=bool(robot_obs[14] > 0),
                    gripper_width=float(robot_obs[6]))


def _add_base_cylinder(scene: CalvinScene) -> int:
    """The robot's white pedestal, as the official env draws it (visual only, no collision): a cylinder of
    radius 0.13 m from the floor up to the robot base, its axis 5 cm behind the base along the robot's
    facing direction. Returns its body id."""
    c = scene.client
    base = np.array(scene.cfg["robot_base_position"], dtype=np.float64)
    yaw = float(scene.cfg["robot_base_orientation"][2])
    centre = [base[0] - 0.05 * np.cos(yaw), base[1] - 0.05 * np.sin(yaw), base[2] / 2]
    vis = p.createVisualShape(p.GEOM_CYLINDER, radius=0.13, length=float(base[2]), rgbaColor=[1, 1, 1, 1],
                              physicsClientId=c)
    return p.createMultiBody(baseMass=0.0, baseVisualShapeIndex=vis, basePosition=centre, physicsClientId=c)


def _couple_fingers(scene: CalvinScene) -> None:
    """Gear constraint keeping the two fingers symmetric (ratio -1, erp 0.1, at most 50 N), as the official
    robot has; with it the weak opening force (2 N) opens the gripper at the official speed."""
    c = scene.client
    g = p.createConstraint(scene.robot, FINGER_JOINTS[0], scene.robot, FINGER_JOINTS[1], p.JOINT_GEAR, [1, 0, 0],
                           [0, 0, 0], [0, 0, 0], physicsClientId=c)
    p.changeConstraint(g, gearRatio=-1, erp=0.1, maxForce=50, physicsClientId=c)


def decode_segmentation(seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Splits a PyBullet object+link segmentation image into (body ids, link indices), both (H, W) int32.

    Background pixels get body -1 and link -2; a body's base is link -1.
    """
    seg = np.asarray(seg, dtype=np.int64)
    bg = seg < 0
    body = np.where(bg, -1, seg & ((1 << 24) - 1)).astype(np.int32)
    link = np.where(bg, -2, (seg >> 24) - 1).astype(np.int32)
    return body, link
