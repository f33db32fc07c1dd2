"""A test double of a SimplerEnv task env (no SAPIEN, no physics): what CI uses where SimplerEnv is never installed.

:class:`SimplerEnvDouble` has the observation/step interface documented in :mod:`ivm_ros_sim.simpler.env` (and in
../shared/tools/simpler_cpu/README.md): ``obs["image"][camera]`` with ``rgb`` (H, W, 3) uint8, ``depth``
(H, W, 1) float32 and ``Segmentation`` (H, W, 4) uint32 (``[..., 1]`` actor ids), ``obs["camera_param"]`` with
``intrinsic_cv``; ``unwrapped.robot_uid / control_freq / get_language_instruction() / episode_source_obj /
episode_target_obj``; ``reset(seed=, options=)`` -> (obs, info with ``episode_id``); ``step(a)`` -> (obs, reward,
terminated, truncated, info with ``success``), truncated after ``max_episode_steps``.

Its world is a stand-in: a flat table (actor 7) with the source (actor 16) and target (actor 17) drawn as squares
placed by the episode id, and an end effector that accumulates the xyz deltas (reported as ``extra.tcp_pose`` with
stand-in ``agent`` qpos / base_pose); ``success`` once it has moved ``SUCCESS_DISTANCE`` m along +x. Every env
action it received is kept in ``actions``. Make kwarg ``distractors=N`` (our Bridge distractor variants) adds N
actors ``unwrapped.distractor_objs`` (ids 18, 19, ...; names: the models
:func:`~ivm_ros_sim.simpler.distractors.choose_models` picks for the reset seed), squares along the bottom edge.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

SUCCESS_DISTANCE = 0.05  # m of +x end-effector motion that counts as success
TABLE_ID, SOURCE_ID, TARGET_ID, FIRST_DISTRACTOR_ID = 7, 16, 17, 18
#: task -> (robot_uid, control Hz, main camera, instruction, source name, target name, max steps)
DOUBLE_TASKS: dict[str, tuple[str, float, str, str, str, str, int]] = {
    "widowx_carrot_on_plate": ("widowx", 5.0, "3rd_view_camera", "put carrot on plate", "carrot", "plate", 60),
    "widowx_spoon_on_towel": ("widowx", 5.0, "3rd_view_camera", "put the spoon on the towel", "spoon", "towel", 60),
    "widowx_stack_cube": ("widowx", 5.0, "3rd_view_camera", "stack the green block on the yellow block",
                          "green_cube", "yellow_cube", 60),
    "widowx_put_eggplant_in_basket": ("widowx", 5.0, "3rd_view_camera", "put eggplant into yellow basket",
                                      "eggplant", "basket", 120),
    "google_robot_pick_coke_can": ("google_robot_static", 3.0, "overhead_camera", "pick coke can", "coke_can", "",
                                   80),
}
EPISODES = 24  # object placements per task (SimplerEnv's Bridge tasks: 24)
HOME_TCP = np.array([0.29, 0.0, 0.135])  # m, base frame: the WidowX TCP at SimplerEnv's home pose (stand-in)
TCP_QUAT = (0.7071068, 0.0, 0.7071068, 0.0)  # wxyz: 90 deg about base y, the gripper pointing down


@dataclasses.dataclass
class ActorDouble:
    """What the bridge reads of a SAPIEN actor: its per-scene ``id`` and ``name``."""

    id: int
    name: str


class SimplerEnvDouble:
    """See the module docstring. ``size``: main camera (H, W) px (the real one is 480x640); the base camera is
    32x32. ``kwargs``: the make kwargs it was given (the variant), kept for tests."""

    def __init__(self, task: str = "widowx_carrot_on_plate", size: tuple[int, int] = (48, 64), **kwargs: Any) -> None:
        if task not in DOUBLE_TASKS:
            raise ValueError(f"SimplerEnvDouble has no task {task!r}; known: {sorted(DOUBLE_TASKS)}")
        spec = DOUBLE_TASKS[task]
        self.task, self.size, self.kwargs = task, size, kwargs
        self.robot_uid, self.control_freq, self.main_camera, self.instruction = spec[:4]
        self.episode_source_obj = ActorDouble(SOURCE_ID, spec[4])
        self.episode_target_obj = ActorDouble(TARGET_ID, spec[5]) if spec[5] else None
        self.max_episode_steps = spec[6]
        self.distractors = int(kwargs.get("distractors", 0) or 0)
        if self.distractors:
            from ivm_ros_sim.simpler.distractors import SLOTS

            if task not in SLOTS:  # as the real env maker (distractors.route)
                raise ValueError(f"distractors={self.distractors}: not for {task}")
        self.distractor_objs: list[ActorDouble] = []
        self.actions: list[np.ndarray] = []
        self.episode_id, self.steps, self.ee = 0, 0, np.zeros(3)
        self.closed = False

    @classmethod
    def make(cls, task: str, **kwargs: Any) -> SimplerEnvDouble:
        """A factory with ``simpler_env.make``'s signature (for ``SimplerTaskEnv(make=...)``)."""
        return cls(task, **kwargs)

    @property
    def unwrapped(self) -> SimplerEnvDouble:
        return self

    def get_language_instruction(self) -> str:
        return self.instruction

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        options = options or {}
        drawn = int(np.random.default_rng(seed).integers(EPISODES))
        self.episode_id = int(options.get("obj_init_options", {}).get("episode_id", drawn))
        self.steps, self.ee = 0, np.zeros(3)
        if self.distractors:
            from ivm_ros_sim.simpler.distractors import choose_models

            names = choose_models(self.task, int(seed or 0), self.distractors)
            self.distractor_objs = [ActorDouble(FIRST_DISTRACTOR_ID + k, n) for k, n in enumerate(names)]
        return self._obs(), {"episode_id": self.episode_id, "reset_options": options}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (7,):
            raise ValueError(f"expected a 7-D env action, got {a.shape}")
        self.actions.append(a.copy())
        self.ee += a[:3]
        self.steps += 1
        success = bool(self.ee[0] >= SUCCESS_DISTANCE)
        truncated = self.steps >= self.max_episode_steps
        info = {"elapsed_steps": self.steps, "success": success}
        return self._obs(), float(success), success, truncated, info

    def _obs(self) -> dict[str, Any]:
        cams = {self.main_camera: self.size, "base_camera": (32, 32)}
        image, params = {}, {}
        for name, (h, w) in cams.items():
            seg = self._segmentation(h, w)
            rgb = np.zeros((h, w, 3), np.uint8)
            rgb[...] = (90, 80, 70)
            rgb[seg == SOURCE_ID] = (230, 120, 30)
            rgb[seg == TARGET_ID] = (200, 200, 210)
            rgb[seg >= FIRST_DISTRACTOR_ID] = (60, 160, 60)
            shade = int(np.clip(self.ee[0] * 2000, 0, 60))  # the view changes as the arm moves
            rgb[: h // 8] = (shade, shade, shade)
            mesh = seg + 100 * (seg > 0)  # [..., 0] mesh ids (unused here), [..., 1] actor ids
            image[name] = {"rgb": rgb, "depth": np.ones((h, w, 1), np.float32),
                           "Segmentation": np.stack([mesh, seg, 0 * seg, 0 * seg], -1).astype(np.uint32)}
            f = 0.97 * w
            params[name] = {"intrinsic_cv": np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]]),
                            "extrinsic_cv": np.eye(4)[:3], "cam2world_gl": np.eye(4)}
        return {"agent": self._agent(), "extra": {"tcp_pose": np.array([*(HOME_TCP + self.ee), *TCP_QUAT])},
                "camera_param": params, "image": image}

    def _agent(self) -> dict[str, np.ndarray]:
        """Stand-in agent state: ``qpos`` (8,) (arm joints 0, fingers open 0.037 m each) and ``base_pose`` (7,)
        (at the origin, identity wxyz quaternion); the TCP (``extra.tcp_pose``) at ``HOME_TCP`` + the accumulated
        xyz deltas, gripper pointing down."""
        qpos = np.array([0.0] * 6 + [0.037, 0.037], np.float32)
        return {"qpos": qpos, "qvel": np.zeros(8, np.float32), "base_pose": np.array([0, 0, 0, 1.0, 0, 0, 0])}

    def _segmentation(self, h: int, w: int) -> np.ndarray:
        """(H, W) uint32 actor ids: table everywhere below the top eighth, the source and target squares placed
        by the episode id, the distractors' squares along the bottom edge."""
        seg = np.zeros((h, w), np.uint32)
        seg[h // 8:] = TABLE_ID
        side = max(2, min(h, w) // 6)
        col = (self.episode_id % 4) * w // 8 + w // 16
        row = h // 4 + (self.episode_id // 4 % 3) * h // 8
        seg[row:row + side, col:col + side] = SOURCE_ID
        if self.episode_target_obj is not None:
            seg[row:row + side, col + w // 2:col + w // 2 + side] = TARGET_ID
        for k, actor in enumerate(self.distractor_objs):
            seg[h - side - 1:h - 1, k * w // 4 + 1:k * w // 4 + 1 + side] = actor.id
        return seg

    def close(self) -> None:
        self.closed = True
