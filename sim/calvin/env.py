"""Gymnasium-style environment over :class:`~ivm_ros_sim.calvin.scene.CalvinScene`.

``reset(seed, task, distraction) -> (obs, info)`` and ``step(action) -> (obs, reward, terminated, truncated,
info)`` (the gymnasium 5-tuple). One step is one 30 Hz control period = 8 physics steps at 240 Hz.

Actions are CALVIN-style relative end-effector commands, (7,) float in [-1, 1] (clipped):
``[dx, dy, dz, droll, dpitch, dyaw, gripper]``; positions scale by 0.02 m and angles by 0.05 rad per step and
are added to the previous *target* pose (not the measured pose); gripper > 0 opens, <= 0 closes.

Observation dict (CALVIN names): ``rgb_static`` (S, S, 3) uint8, ``rgb_gripper`` (G, G, 3) uint8,
``robot_obs`` (15,) float64, ``scene_obs`` (24,) float64 (layouts in :mod:`ivm_ros_sim.calvin.scene`). With
``segmentation=True`` also ``seg_static`` / ``seg_gripper`` (H, W) int32 raw PyBullet object+link ids.

Reward is 1.0 on the step the task's oracle first reports success; ``terminated`` is success, ``truncated`` is
reaching ``max_steps`` (CALVIN: 360 per subtask).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pybullet as p
from gymnasium import spaces
from ivm_ros_sim.calvin import distractors as dist
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.scene import (
    ARM_JOINTS,
    BLOCKS,
    CONTROL_HZ,
    FINGER_JOINTS,
    FINGER_OPEN,
    PHYSICS_HZ,
    TCP_LINK,
    CalvinScene,
    set_observed_state,
)

MAX_REL_POS = 0.02  # m per step at action 1.0
MAX_REL_ORN = 0.05  # rad per step at action 1.0

#: Surfaces (x/y box, top z) from conf/scene/calvin_scene_D.yaml.
SURFACE_NAMES = ("table", "slider_left", "slider_right")
DRAWER_INSIDE = (0.18, 0.36)  # (x, z) of the drawer floor centre area; y follows the drawer joint


class PandaController:
    """The official calvin_env's Panda controller and gripper on a :class:`CalvinScene` (797142c, checked step
    by step in test/sim/calvin/test_fidelity_physics.py): PyBullet IK for the tcp link with the official
    null-space arguments, joint position motors with a velocity cap, a weak-opening gear-coupled gripper, and
    the tcp pose observed one physics step late."""

    def __init__(self, scene: CalvinScene) -> None:
        self.scene = scene
        n = len(ARM_JOINTS) + len(FINGER_JOINTS)
        # Null space as the official env passes it: +-7 rad and ranges of 7 for all 9 movable joints (not the real
        # limits; the solution is clipped to those), rest poses = the home arm pose with open fingers.
        self.ik_null_space = {"lowerLimits": [-7.0] * n, "upperLimits": [7.0] * n, "jointRanges": [7.0] * n,
                              "restPoses": list(scene.q_home) + [FINGER_OPEN] * 2}

    def command_arm(self, pos: np.ndarray, euler: np.ndarray) -> None:
        """Arm motors towards the IK solution for the tcp at ``pos`` (3,) m, ``euler`` (3,) rad (xyz): PyBullet's
        default IK iterations, clipped to the real joint limits."""
        s, cfg = self.scene, self.scene.robot_cfg
        q = p.calculateInverseKinematics(s.robot, TCP_LINK, pos.tolist(), p.getQuaternionFromEuler(euler.tolist()),
                                         physicsClientId=s.client, **self.ik_null_space)
        self.arm_motors(np.clip(q[:len(ARM_JOINTS)], cfg["lower_joint_limits"], cfg["upper_joint_limits"]))

    def arm_motors(self, q: np.ndarray) -> None:
        """Arm position motors towards ``q`` (7,) rad with ``max_joint_force`` (200 N m) and at most
        ``max_velocity`` (2 rad/s)."""
        s, cfg = self.scene, self.scene.robot_cfg
        for j, target in zip(ARM_JOINTS, q):
            p.setJointMotorControl2(s.robot, j, p.POSITION_CONTROL, targetPosition=float(target),
                                    force=float(cfg["max_joint_force"]), maxVelocity=float(cfg["max_velocity"]),
                                    physicsClientId=s.client)

    def command_gripper(self, action: float) -> None:
        """Finger position motors: open (> 0) to 0.04 m each with 1 % of ``gripper_force`` (2 N), close (<= 0) to
        0 with all of it (200 N), at most 1 m/s; the scene couples the fingers with a gear constraint."""
        s = self.scene
        force = float(s.robot_cfg["gripper_force"])
        width, force = (FINGER_OPEN, force / 100.0) if action > 0 else (0.0, force)
        for j in FINGER_JOINTS:
            p.setJointMotorControl2(s.robot, j, p.POSITION_CONTROL, targetPosition=width, force=force,
                                    maxVelocity=1.0, physicsClientId=s.client)

    def hold(self) -> None:
        """Arm motors hold the current joint angles; the gripper keeps its last command."""
        self.arm_motors(self.scene.arm_q())
        self.command_gripper(self.scene.gripper_action)

    def physics_steps(self, n: int) -> None:
        """``n`` physics steps (240 Hz). The tcp pose the observations report is the one the last step starts
        from (``scene.tcp_observed``): the official env reads PyBullet's link state without forward kinematics,
        which lags the joints by one physics step (~1 mm at full speed)."""
        for i in range(n):
            if i == n - 1:
                self.scene.tcp_observed = self.scene.tcp_pose()
            p.stepSimulation(physicsClientId=self.scene.client)


#: :class:`CalvinSceneEnv`'s ``distraction_cameras`` choices
DISTRACTION_CAMERAS = ("both", "static", "static-all", "none")


def check_distraction_cameras(value: str) -> None:
    """ValueError unless ``value`` is one of :data:`DISTRACTION_CAMERAS`."""
    if value not in DISTRACTION_CAMERAS:
        raise ValueError(f"distraction_cameras must be one of {DISTRACTION_CAMERAS}, got {value!r}")


class CalvinSceneEnv:
    """A CALVIN scene (D by default) with task-conditioned resets, exact chain starts, optional distractors and
    the success oracle.

    Args:
        scene: "A", "B", "C" or "D" (:data:`~ivm_ros_sim.calvin.scene.SCENES`).
        static_size / gripper_size: square image sizes in pixels (CALVIN: 200 / 84).
        render: render camera images (False returns zero images: for fast scripted rollouts).
        render_gripper: render ``rgb_gripper`` (False leaves a zero image, to save time).
        segmentation: also return segmentation images (needed for ground-truth masks).
        max_steps: truncation horizon per episode.
        distraction_cameras: which cameras see a level: "both" (the world as it is), "static" (a diagnostic: the
            gripper camera renders the scene's own texture and light, :func:`~ivm_ros_sim.calvin.distractors.
            plain_view`; objects are seen by both), "static-all" (also without the level's objects,
            :func:`~ivm_ros_sim.calvin.distractors.hidden_bodies`: the gripper camera sees none of the level) or
            "none" (neither camera sees any of it, the static camera's jitter undone too: what is left of a level
            is its objects' physical presence).
    """

    def __init__(self, static_size: int = 200, gripper_size: int = 84, render: bool = True,
                 render_gripper: bool = True, segmentation: bool = False, max_steps: int = 360,
                 robot_visual: str = "fast", scene: str = "D", distraction_cameras: str = "both") -> None:
        check_distraction_cameras(distraction_cameras)
        self.scene = CalvinScene(static_size, gripper_size, robot_visual, scene)
        self.distraction_cameras = distraction_cameras
        self.render = render
        self.render_gripper = render_gripper
        self.segmentation = segmentation
        self.max_steps = max_steps
        self.task: str | None = None
        self.instruction = ""
        self.distraction = "none"
        self.distractor_bodies: list[int] = []
        self.start_state: T.SceneState | None = None
        self.steps = 0
        self.control_ticks = 0  # control periods since construction (monotonic across episodes)
        self.succeeded = False
        self.target_pos = np.zeros(3)
        self.target_euler = np.zeros(3)
        self.rng = np.random.default_rng(0)
        st, gr = self.scene.cameras["static"], self.scene.cameras["gripper"]
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float64)
        self.observation_space = spaces.Dict({
            "rgb_static": spaces.Box(0, 255, (st.height, st.width, 3), np.uint8),
            "rgb_gripper": spaces.Box(0, 255, (gr.height, gr.width, 3), np.uint8),
            "robot_obs": spaces.Box(-np.inf, np.inf, (15,), np.float64),
            "scene_obs": spaces.Box(-np.inf, np.inf, (24,), np.float64),
        })
        self._base_state = p.saveState(physicsClientId=self.scene.client)
        self.controller = PandaController(self.scene)

    @property
    def client(self) -> int:
        return self.scene.client

    def close(self) -> None:
        self.scene.close()

    # ------------------------------------------------------------------ reset
    def reset(self, seed: int | None = None, task: str | None = None, distraction: str = "none",
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Starts an episode. ``task`` None draws one of the 34 tasks; ``distraction`` is a level name of
        :data:`ivm_ros_sim.calvin.distractors.LEVELS`. ``options`` may hold ``instruction_split`` ("eval", "train",
        "heldout") or ``instruction`` (a given sentence). Same seed, task and level -> identical episode."""
        options = dict(options or {})
        if task is not None:
            T.check_task(task)
        dist.check_level(distraction)
        self.rng = np.random.default_rng(seed)
        if task is None:
            task = T.all_tasks()[int(self.rng.integers(len(T.all_tasks())))]
        self.task, self.distraction = task, distraction
        for _attempt in range(5):  # a start state that needs a grasp is redrawn if the grasp slips
            self._restore_base()
            scene_obs, grasp = sample_initial_state(self.scene, task, self.rng)
            self.scene.set_state(scene_obs)
            self.distractor_bodies = dist.apply(self.scene, distraction, self.rng, task)
            self._settle(30)
            if grasp is None:
                break
            self._grasp_for_start(grasp)
            self._settle(5)
            if ("robot", "finger") in self.scene.contacts(self.scene.blocks[grasp]):
                break
        else:
            raise RuntimeError(f"could not build a start state for {task!r} (seed {seed})")
        self.start_state = self.state()
        self.steps, self.succeeded = 0, False
        if "instruction" in options:
            self.instruction = str(options["instruction"])
        else:
            self.instruction = T.instruction(task, self.rng, options.get("instruction_split", "eval"))
        return self.observe(), self._info()

    def reset_to_state(self, robot_obs: np.ndarray, scene_obs: np.ndarray, distraction: str = "none",
                       seed: int | None = None, physics_steps: int = 1) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Starts a chain from an exact state, as CALVIN's evaluation resets to a chain's start.

        As the official env's reset: ``robot_obs`` (15,) gives the 7 arm joints (rad), each finger at half the
        gripper width and the gripper action (> 0 open); the tcp target is the tcp there; ``scene_obs`` (24,) gives
        doors, lights and block poses; then ``physics_steps`` physics steps run (the official reset: 1; lights are
        updated from the next env step on; 0 leaves the state exactly as given, e.g. to read its contacts).
        ``distraction`` objects are drawn with ``seed``. No task is active until :meth:`begin_subtask`.
        ValueError for a wrong shape or a non-finite value."""
        r, s = _state_vector("robot_obs", robot_obs, 15), _state_vector("scene_obs", scene_obs, 24)
        dist.check_level(distraction)
        self.rng = np.random.default_rng(seed)
        self._restore_base()
        set_observed_state(self.scene, r, s)
        self.distractor_bodies = dist.apply(self.scene, distraction, self.rng)
        self._hold_arm()
        self._target_at_tcp()
        self.controller.physics_steps(physics_steps)
        self.task, self.instruction, self.distraction = None, "", distraction
        self.start_state = self.state()
        self.steps, self.succeeded = 0, False
        return self.observe(), self._info()

    def begin_subtask(self, task: str, instruction: str | None = None) -> dict[str, Any]:
        """Makes ``task`` the active task from the current state, without moving a task object: the oracle compares
        against the state now (CALVIN scores each subtask of a chain from the state at its start); the step
        count restarts. Workspace distractors are readied for ``task`` first (look-alikes follow the named block,
        none left in its path: :func:`~ivm_ros_sim.calvin.distractors.begin_subtask`). ``instruction`` defaults
        to the task's evaluation sentence. Returns the info dict."""
        T.check_task(task)
        self.task = task
        self.instruction = T.eval_sentences()[task] if instruction is None else str(instruction)
        self.distractor_bodies = dist.begin_subtask(self.scene, self.distractor_bodies, task)
        self.start_state = self.state()
        self.steps, self.succeeded = 0, False
        return self._info()

    def _restore_base(self) -> None:
        """Removes the distractors and puts the world back to its state after loading, without the contact caches
        restoreState keeps (:func:`forget_contacts`)."""
        for body in self.distractor_bodies:
            p.removeBody(body, physicsClientId=self.client)
        self.distractor_bodies = []
        p.restoreState(self._base_state, physicsClientId=self.client)
        forget_contacts(self.scene)

    def _target_at_tcp(self) -> None:
        """The tcp target (which relative actions move) becomes the tcp's pose now."""
        pos, orn = self.scene.tcp_pose()
        self.target_pos, self.target_euler = pos.copy(), np.array(p.getEulerFromQuaternion(orn.tolist()))

    def _settle(self, n: int) -> None:
        """``n`` physics steps holding the arm; then the tcp target is where the tcp is (so a start grasp never
        moves from the previous episode's target: fresh and reused envs give the same start)."""
        self._hold_arm()
        self.controller.physics_steps(n)
        self.scene.update_mechanisms()
        self._target_at_tcp()

    def _hold_arm(self) -> None:
        """Arm motors hold the current joint angles; the gripper keeps its last command."""
        self.controller.hold()

    def _grasp_for_start(self, block: str) -> None:
        """Puts ``block`` between the closed fingers above its position (for place / stack starts)."""
        from ivm_ros_sim.calvin.expert import Expert  # local import: expert depends on env

        Expert(self).run_lift(block)

    # ------------------------------------------------------------------ step
    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Applies one 7-D relative action for one control period (see module docstring)."""
        if self.start_state is None:
            raise RuntimeError("call reset() or reset_to_state() before step()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (7,):
            raise ValueError(f"action must have shape (7,), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a}")
        self.apply_action(a)
        self.steps += 1
        done = self.check_success() if self.task is not None else False
        reward = 1.0 if done and not self.succeeded else 0.0
        self.succeeded = self.succeeded or done
        return self.observe(), reward, done, self.steps >= self.max_steps, self._info()

    def apply_action(self, a: np.ndarray) -> None:
        """Moves the target pose by the clipped relative action and simulates one control period. As in the
        official env the target is not bounded: commanding past the arm's reach winds it up."""
        a = np.clip(a, -1.0, 1.0)
        self.target_pos = self.target_pos + a[:3] * MAX_REL_POS
        self.target_euler = (self.target_euler + a[3:6] * MAX_REL_ORN + np.pi) % (2 * np.pi) - np.pi
        self.controller.command_arm(self.target_pos, self.target_euler)
        self.scene.gripper_action = 1.0 if a[6] > 0 else -1.0
        self.controller.command_gripper(self.scene.gripper_action)
        self.controller.physics_steps(PHYSICS_HZ // CONTROL_HZ)
        self.control_ticks += 1
        self.scene.update_mechanisms()

    # ------------------------------------------------------------------ observation / oracle
    def state(self) -> T.SceneState:
        """The oracle's view of the current world (:func:`oracle_state`)."""
        return oracle_state(self.scene)

    def check_success(self) -> bool:
        """Whether the current task is achieved relative to the episode's start state."""
        if self.task is None or self.start_state is None:
            raise RuntimeError("call reset() first")
        return T.success(self.task, self.start_state, self.state())

    def observe(self) -> dict[str, np.ndarray]:
        """The current observation dict (renders the cameras; see the module docstring)."""
        s = self.scene
        if self.render:
            with dist.camera_view(s, "static", self.distraction_cameras, self.distractor_bodies):
                rgb_s, seg_s = s.render("static", self.segmentation)
        else:
            spec = s.cameras["static"]
            rgb_s, seg_s = np.zeros((spec.height, spec.width, 3), np.uint8), None
        obs = {"rgb_static": rgb_s}
        if self.render and self.render_gripper:
            with dist.camera_view(s, "gripper", self.distraction_cameras, self.distractor_bodies):
                rgb_g, seg_g = s.render("gripper", self.segmentation)
        else:
            spec = s.cameras["gripper"]
            rgb_g, seg_g = np.zeros((spec.height, spec.width, 3), np.uint8), None
        obs["rgb_gripper"] = rgb_g
        obs["robot_obs"] = s.robot_obs()
        obs["scene_obs"] = s.scene_obs()
        if self.segmentation and seg_s is not None:
            obs["seg_static"] = seg_s
            if seg_g is not None:
                obs["seg_gripper"] = seg_g
        return obs

    def _info(self) -> dict[str, Any]:
        return {"task": self.task, "instruction": self.instruction, "success": self.succeeded,
                "steps": self.steps, "distraction": self.distraction,
                "family": T.family(self.task) if self.task else None}

    @property
    def sim_time(self) -> float:
        """Simulated seconds of control since construction (for a ROS /clock); reset() does not rewind it."""
        return self.control_ticks / CONTROL_HZ

    def camera_info(self) -> dict[str, dict[str, Any]]:
        """Per camera: width, height, K (3x3 list), fov (deg), frame name; for a ROS CameraInfo."""
        return {name: {"width": c.width, "height": c.height, "k": c.intrinsics().tolist(), "fov": c.fov,
                       "frame_id": f"{name}_camera"} for name, c in self.scene.cameras.items()}


def oracle_state(scene: CalvinScene) -> T.SceneState:
    """The oracle's view of ``scene``: scene_obs, each block's contacts and velocity, the bodies the robot touches.
    Contacts are recomputed for the current poses first (no physics step), so a state right after a teleport
    (``reset_to_state``) has real contacts."""
    c = scene.client
    p.performCollisionDetection(physicsClientId=c)
    vel = {n: np.concatenate(p.getBaseVelocity(scene.blocks[n], physicsClientId=c)) for n in BLOCKS}
    return T.SceneState(scene.scene_obs(), {n: scene.contacts(scene.blocks[n]) for n in BLOCKS}, vel,
                        {body for body, _ in scene.contacts(scene.robot)})


def forget_contacts(scene: CalvinScene) -> None:
    """Drops PyBullet's cached contact manifolds of the blocks (moved apart, far away, for one collision pass), so
    the next physics step does not warm-start from contacts of an earlier episode: a reset's outcome then does
    not depend on what the env ran before (restoreState keeps those caches)."""
    for i, body in enumerate(scene.blocks.values()):
        p.resetBasePositionAndOrientation(body, [10.0 * (i + 1), 10.0, -10.0], [0, 0, 0, 1],
                                          physicsClientId=scene.client)
    p.performCollisionDetection(physicsClientId=scene.client)


def _state_vector(name: str, values: np.ndarray, n: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (n,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be {n} finite numbers, got shape {v.shape}")
    return v


# ---------------------------------------------------------------------------------------------- initial states
def _surface_boxes(scene: CalvinScene) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {n: (np.array(scene.cfg["surfaces"][n][0]), np.array(scene.cfg["surfaces"][n][1])) for n in SURFACE_NAMES}


def _sample_xy(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, taken: list[np.ndarray],
               min_dist: float = 0.085) -> np.ndarray | None:
    for _ in range(200):
        xy = rng.uniform(lo[:2], hi[:2])
        if all(np.linalg.norm(xy - t) >= min_dist for t in taken):
            return xy
    return None


def sample_initial_state(scene: CalvinScene, task: str, rng: np.random.Generator) -> tuple[np.ndarray, str | None]:
    """A random scene_obs (24,) that satisfies ``task``'s precondition, and the block to hold in the gripper
    at the start (place / stack tasks) or None. Blocks rest on the table or the cabinet shelf (z is set from
    the block's height; the caller lets physics settle). The random draws happen in a fixed order
    (articulations, block order, surfaces, positions), so a seed always gives the same state."""
    s = _sample_articulations(scene, task, rng)
    order = list(BLOCKS)
    rng.shuffle(order)
    where, grasp, stack_pair = _assign_surfaces(s, task, order, rng)
    _place_blocks(s, scene, task, order, where, stack_pair[0] if stack_pair else None, rng)
    if stack_pair:
        top, bottom = stack_pair
        ib, it = 6 + 6 * BLOCKS.index(bottom), 6 + 6 * BLOCKS.index(top)
        s[it:it + 3] = s[ib:ib + 3] + [0, 0, scene.block_size[bottom][2] / 2 + scene.block_size[top][2] / 2 + 0.003]
        s[it + 5] = s[ib + 5]
    return s, grasp


def _sample_articulations(scene: CalvinScene, task: str, rng: np.random.Generator) -> np.ndarray:
    """A scene_obs (24,) with random articulations and lights (slider, drawer, button, switch, bulb, LED),
    forced where ``task``'s precondition needs it; the block entries are left at zero."""
    kind, *args = T.check_task(task)
    fam = T.family(task)
    upper = scene.joint_upper
    s = np.zeros(24)
    s[0] = rng.choice([0.0, upper["base__slide"]])
    s[1] = rng.uniform(0.0, 0.05) if rng.random() < 0.7 else rng.uniform(0.12, upper["base__drawer"])
    s[3] = rng.choice([0.0, upper["base__switch"]])
    s[4] = float(s[3] > 0)
    s[5] = float(rng.random() < 0.5)
    if fam == "slider":
        s[0] = rng.uniform(0.0, 0.05) if args[1] > 0 else rng.uniform(0.2, upper["base__slide"])
    if fam == "drawer":
        s[1] = rng.uniform(0.0, 0.03) if args[1] > 0 else rng.uniform(0.16, upper["base__drawer"])
    if kind == "toggle_light":
        state = args[1]
        if args[0] == "lightbulb":
            s[3] = 0.0 if state == 0 else upper["base__switch"]
            s[4] = float(state)
        else:
            s[5] = float(state)
    if (kind == "lift_object" and args[3] == "drawer_link") or kind in ("place_object", "push_object_into"):
        if kind == "lift_object" or args[-1] == "drawer_link":
            s[1] = upper["base__drawer"]
    return s


def _assign_surfaces(s: np.ndarray, task: str, order: list[str], rng: np.random.Generator
                     ) -> tuple[dict[str, str], str | None, tuple[str, str] | None]:
    """Where each block goes (table, slider_left/right, drawer), the block to hold at the start (or None) and
    the (top, bottom) pair to stack for unstack (or None). May move the sliding door (``s[0]``)."""
    kind, *args = T.check_task(task)
    target = T.target_block(task)
    where: dict[str, str] = {}
    for b in order:
        where[b] = "table" if rng.random() < 0.75 else ("slider_left" if s[0] < 0.1 else "slider_right")
    if T.family(task) == "slider":  # keep the shelf clear so the door never pushes a block
        where = {b: "table" for b in BLOCKS}
    if target is not None:
        where[target] = {"base_link": "table", "plank_link": "slider_left",
                         "drawer_link": "drawer"}.get(args[-1], "table") if kind == "lift_object" else "table"
    if kind == "lift_object" and args[-1] == "plank_link":  # door to the right, block in the open left half
        s[0] = rng.uniform(0.0, 0.02)
        for b in BLOCKS:
            where[b] = "table" if b != target else "slider_left"
    grasp = None
    if kind in ("place_object", "stack_objects"):
        grasp = order[0]
        where[grasp] = "table"
    if kind == "push_object_into":
        where[order[0]] = "table"
    stack_pair = (order[0], order[1]) if kind == "unstack_objects" else None
    if stack_pair:
        where[stack_pair[0]] = where[stack_pair[1]] = "table"
    return where, grasp, stack_pair


def _place_blocks(s: np.ndarray, scene: CalvinScene, task: str, order: list[str], where: dict[str, str],
                  skip: str | None, rng: np.random.Generator) -> None:
    """Writes each block's position and yaw into ``s`` (in ``order``; ``skip`` is placed by the caller)."""
    kind, *args = T.check_task(task)
    target = T.target_block(task)
    surfaces = _surface_boxes(scene)
    taken: dict[str, list[np.ndarray]] = {k: [] for k in (*SURFACE_NAMES, "drawer")}
    for b in order:
        if b == skip:
            continue
        xy, z, surf = _block_spot(s, surfaces, where[b], taken, kind, args, b == target, rng, scene.offsets)
        taken[surf].append(xy)
        i = 6 + 6 * BLOCKS.index(b)
        half = scene.block_size[b][2] / 2
        s[i:i + 3] = [xy[0], xy[1], z + half + 0.002]
        s[i + 5] = rng.uniform(-np.pi / 2, np.pi / 2)
        if b == target and kind == "rotate_object":
            s[i + 5] = rng.uniform(-0.5, 0.5)
        if b == target and surf.startswith("slider"):  # long side pointing into the cabinet: graspable from the front
            s[i + 5] = np.pi / 2 + rng.uniform(-0.3, 0.3)


def _block_spot(s: np.ndarray, surfaces: dict[str, tuple[np.ndarray, np.ndarray]], surf: str,
                taken: dict[str, list[np.ndarray]], kind: str, args: list, is_target: bool,
                rng: np.random.Generator, off: dict[str, float]) -> tuple[np.ndarray, float, str]:
    """(xy, surface z, surface) for one block on ``surf``; a crowded shelf falls back to the table. ``off``: the
    scene's x shifts against scene D (:func:`~ivm_ros_sim.calvin.scene.scene_offsets`)."""
    if surf == "drawer":  # drawer interior at joint q = s[1]: y in [-q-0.17, -q+0.05]
        dx = off["base__drawer"]
        lo, hi = np.array([0.10 + dx, -s[1] - 0.12]), np.array([0.26 + dx, -s[1] - 0.02])
        return rng.uniform(lo, hi), DRAWER_INSIDE[1], surf
    lo, hi = surfaces[surf]
    if is_target and surf == "slider_left" and kind == "lift_object":  # reachable without the door
        lo, hi = lo.copy(), hi.copy()
        lo[0], hi[0] = -0.30 + off["base__plank"], -0.24 + off["base__plank"]
    if is_target and kind == "push_object":  # room to push 10+ cm, away from the switch and edge
        lo, hi = lo.copy(), hi.copy()
        hi[1] = -0.06
        lo[0], hi[0] = np.array((0.0, 0.15) if args[1] > 0 else (0.17, 0.28)) + off["table"]
    xy = _sample_xy(rng, lo, hi, taken[surf])
    if xy is None:  # crowded shelf: fall back to the table
        surf = "table"
        xy = _sample_xy(rng, *surfaces["table"], taken["table"], 0.06)
        xy = xy if xy is not None else rng.uniform(surfaces["table"][0][:2], surfaces["table"][1][:2])
    return xy, surfaces[surf][0][2], surf


def twist_to_action(linear: np.ndarray, angular: np.ndarray, gripper: float, dt: float = 1.0 / CONTROL_HZ
                    ) -> np.ndarray:
    """Converts an end-effector twist (linear m/s (3,), angular rad/s (3,) as euler rates) held for ``dt``
    seconds plus a gripper command (> 0 open) into this env's 7-D relative action (clipped to [-1, 1])."""
    lin, ang = np.asarray(linear, np.float64), np.asarray(angular, np.float64)
    if lin.shape != (3,) or ang.shape != (3,) or not (np.all(np.isfinite(lin)) and np.all(np.isfinite(ang))):
        raise ValueError("linear and angular must be finite 3-vectors")
    if not np.isfinite(gripper) or dt <= 0:
        raise ValueError(f"gripper must be finite and dt positive, got {gripper}, {dt}")
    a = np.concatenate([lin * dt / MAX_REL_POS, ang * dt / MAX_REL_ORN, [1.0 if gripper > 0 else -1.0]])
    return np.clip(a, -1.0, 1.0)
