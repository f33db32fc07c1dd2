"""One SimplerEnv task behind a small interface the bridge node and the harness share (ROS-free).

:class:`SimplerTaskEnv` makes the task's gym env (SimplerEnv imported lazily, see :func:`make_simpler`), resets it
with a seed, an episode id and variant settings, takes *policy* actions (converted by
:mod:`ivm_ros_sim.simpler.actions`) and returns :class:`Frame` s: the third-person (``main``) and ``base`` camera
images, their actor-level segmentation, success and the step count.

SimplerEnv's interface, as used here (ManiSkill2_real2sim, ``obs_mode="rgbd"``, ``prepackaged_config=True``):
``obs["image"][camera]["rgb"]`` (H, W, 3) uint8 and ``["Segmentation"]`` (H, W, 4) uint32 (``[..., 1]`` actor
ids), ``obs["camera_param"][camera]["intrinsic_cv"]`` (3, 3) pixels; ``obs["agent"]`` ``qpos`` / ``base_pose`` and
``obs["extra"]["tcp_pose"]`` (the WidowX proprio, :mod:`~ivm_ros_sim.simpler.proprio`); cameras
``3rd_view_camera`` (WidowX, 640x480) or ``overhead_camera`` (Google robot), and ``base_camera``.
``env.unwrapped``: ``robot_uid``, ``control_freq`` (Hz; Bridge 5), ``get_language_instruction()``, the task's
actors (``episode_source_obj`` / ``episode_target_obj``, or ``obj``) with ``.id`` and ``.name``. ``env.step(a)``
-> obs, reward, terminated, truncated, info with ``info["success"]``; a TimeLimit wrapper truncates (Bridge: 60
steps, eggplant 120).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from ivm_ros_sim.simpler import actions
from ivm_ros_sim.simpler.proprio import proprio_from_obs

#: SimplerEnv's task names -> (ManiSkill2_real2sim env id, make kwargs); used when only ManiSkill2_real2sim is
#: installed (SimplerEnv's own ``simpler_env.make`` is preferred when present).
TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "widowx_carrot_on_plate": ("PutCarrotOnPlateInScene-v0", {}),
    "widowx_spoon_on_towel": ("PutSpoonOnTableClothInScene-v0", {}),
    "widowx_stack_cube": ("StackGreenCubeOnYellowCubeBakedTexInScene-v0", {}),
    "widowx_put_eggplant_in_basket": ("PutEggplantInBasketScene-v0", {}),
    "google_robot_pick_coke_can": ("GraspSingleOpenedCokeCanInScene-v0", {}),
    "google_robot_pick_coke_can_distractors": ("GraspSingleOpenedCokeCanDistractorInScene-v0", {}),
}
MAIN_CAMERAS = ("3rd_view_camera", "overhead_camera")
BASE_CAMERA = "base_camera"
INSTALL = (
    "SimplerEnv is not on PyPI: in a Python 3.11 venv, `pip install sapien==2.2.2 \"numpy<2\" gymnasium==0.29.1 "
    "scipy transforms3d opencv-python-headless trimesh imageio imageio-ffmpeg h5py rtree ruckig mediapy tqdm`, "
    "then clone github.com/simpler-env/SimplerEnv (with its ManiSkill2_real2sim submodule) and "
    "`pip install -e --no-deps` both; on a CPU-only machine follow ../shared/tools/simpler_cpu/README.md "
    "(software Vulkan) and `source /opt/simpler_cpu/env.sh`"
)

EnvMaker = Callable[..., Any]  # (task name, **make kwargs) -> gym env with SimplerEnv's interface


def make_task_env(task: str, **kwargs: Any) -> Any:
    """The default env maker: :func:`ivm_ros_sim.simpler.distractors.make_env` (our Bridge distractors
    ``distractors=N`` and the coke-can stage stand-in; everything else goes to :func:`make_simpler`)."""
    from ivm_ros_sim.simpler.distractors import make_env

    return make_env(task, **kwargs)


class SimplerEnvMissing(RuntimeError):
    """SimplerEnv (or ManiSkill2_real2sim / SAPIEN) is not installed; the message says how to install it."""


def make_simpler(task: str, **kwargs: Any) -> Any:
    """The real env of ``task``: ``simpler_env.make`` when SimplerEnv is installed, else ManiSkill2_real2sim's
    ``gym.make`` with :data:`TASKS`. Raises :class:`SimplerEnvMissing` (with :data:`INSTALL`) when neither is."""
    try:
        import simpler_env
    except ModuleNotFoundError:
        simpler_env = None
    if simpler_env is not None:
        return simpler_env.make(task, **kwargs)
    try:
        import gymnasium as gym
        import mani_skill2_real2sim.envs  # noqa: F401  (registers the env ids)
    except ModuleNotFoundError as exc:
        raise SimplerEnvMissing(f"SimplerEnv cannot load ({exc}). Fix: {INSTALL}") from exc
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} without simpler_env installed; known: {sorted(TASKS)}")
    env_id, defaults = TASKS[task]
    return gym.make(env_id, **(defaults | {"obs_mode": "rgbd", "prepackaged_config": True} | kwargs))


@dataclasses.dataclass
class Frame:
    """One observation. ``images``: camera role (``main``, ``base``) -> (H, W, 3) uint8 RGB; ``segmentation``:
    role -> (H, W) uint32 actor ids (empty without segmentation); ``success`` of this step; ``steps`` since the
    reset; ``truncated`` by the env's time limit; ``proprio``: the WidowX proprio vector (8,) float32
    (:mod:`~ivm_ros_sim.simpler.proprio`; None for the Google robot or an env without agent state)."""

    images: dict[str, np.ndarray]
    segmentation: dict[str, np.ndarray]
    success: bool = False
    steps: int = 0
    truncated: bool = False
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    proprio: np.ndarray | None = None


def task_actors(unwrapped: Any) -> dict[str, tuple[int, str]]:
    """The actors the task's instruction names: ``source`` (and ``target``) -> (actor id, name). Put-on and
    move-near tasks have both, grasp tasks only the source (``obj``); others none."""
    found: dict[str, tuple[int, str]] = {}
    for role, attrs in (("source", ("episode_source_obj", "obj")), ("target", ("episode_target_obj",))):
        for attr in attrs:
            actor = getattr(unwrapped, attr, None)
            if actor is not None:
                found[role] = (int(actor.id), str(actor.name))
                break
    return found


class SimplerTaskEnv:
    """One SimplerEnv task; see the module docstring. ``variant``: make kwargs over the task's prepackaged
    config (e.g. ``scene_name``, ``rgb_overlay_path``, ``urdf_version``, our ``distractors``); ``make``: the env
    factory (default :func:`make_task_env`; tests pass :class:`~ivm_ros_sim.simpler.double.SimplerEnvDouble`'s
    ``make``); ``gripper_threshold``: a policy gripper value above it means open."""

    def __init__(self, task: str, variant: dict[str, Any] | None = None, make: EnvMaker | None = None,
                 gripper_threshold: float = 0.0) -> None:
        self.task, self.variant = task, dict(variant or {})
        self.env = (make or make_task_env)(task, **self.variant)
        u = self.env.unwrapped
        self.robot = actions.GOOGLE_ROBOT if "google_robot" in str(getattr(u, "robot_uid", "")) else actions.WIDOWX
        self.control_hz = float(u.control_freq)
        self.gripper_map = actions.GripperMap(self.robot, gripper_threshold)
        self.gripper_action = 1.0  # last policy gripper value (open at reset): what a hold keeps
        self.cameras: dict[str, str] = {}
        self.camera_params: dict[str, dict[str, np.ndarray]] = {}
        self.sizes: dict[str, tuple[int, int]] = {}  # role -> (H, W) px
        self.instruction, self.episode_id, self.steps = "", -1, 0

    # ------------------------------------------------------------------------------------------ episodes
    def reset(self, seed: int, episode_id: int = -1, options: dict[str, Any] | None = None) -> Frame:
        """Resets to ``seed`` and ``episode_id`` (SimplerEnv's object placement index; -1: drawn from the seed)
        with extra reset ``options`` (e.g. ``robot_init_options``); returns the first frame."""
        options = dict(options or {})
        if episode_id >= 0:
            options["obj_init_options"] = dict(options.get("obj_init_options", {}), episode_id=episode_id)
        obs, info = self.env.reset(seed=seed, options=options)
        self.instruction = str(self.env.unwrapped.get_language_instruction())
        self.episode_id = int(info.get("episode_id", episode_id))
        self.cameras = camera_roles(obs["image"])
        self.camera_params = {role: obs["camera_param"][cam] for role, cam in self.cameras.items()}
        self.sizes = {role: obs["image"][cam]["rgb"].shape[:2] for role, cam in self.cameras.items()}
        self.gripper_map.reset()
        self.gripper_action, self.steps = 1.0, 0
        return self._frame(obs, dict(info))

    def step(self, policy_action: np.ndarray) -> Frame:
        """One control step with a policy action (7,) (m, rad Euler deltas, gripper; see
        :mod:`~ivm_ros_sim.simpler.actions`)."""
        env_action = actions.policy_to_env(policy_action, self.gripper_map)
        self.gripper_action = float(policy_action[6])
        obs, _, _, truncated, info = self.env.step(env_action)
        self.steps += 1
        return self._frame(obs, dict(info), truncated=bool(truncated))

    def _frame(self, obs: dict[str, Any], info: dict[str, Any], truncated: bool = False) -> Frame:
        images = {role: obs["image"][cam]["rgb"] for role, cam in self.cameras.items()}
        seg = {role: obs["image"][cam]["Segmentation"][..., 1] for role, cam in self.cameras.items()
               if "Segmentation" in obs["image"][cam]}
        proprio = None
        if self.robot == actions.WIDOWX:
            proprio = proprio_from_obs(obs, self.env.unwrapped, self.gripper_action)
        return Frame(images, seg, bool(info.get("success", False)), self.steps, truncated, info, proprio)

    # ---------------------------------------------------------------------------------------- facts
    def camera_info(self) -> dict[str, dict[str, Any]]:
        """Role -> {"width", "height" (px), "k" (3, 3) pinhole intrinsics in px, OpenCV convention}; valid
        after :meth:`reset`."""
        return {role: {"k": np.asarray(p["intrinsic_cv"], dtype=np.float64), "width": self.sizes[role][1],
                       "height": self.sizes[role][0]} for role, p in self.camera_params.items()}

    def actors(self) -> dict[str, tuple[int, str]]:
        """The task's named actors (see :func:`task_actors`)."""
        return task_actors(self.env.unwrapped)

    def close(self) -> None:
        self.env.close()


def camera_roles(images: dict[str, Any]) -> dict[str, str]:
    """Camera role -> SimplerEnv camera name: ``main`` (3rd_view_camera or overhead_camera, else the first
    non-base camera) and ``base`` (base_camera) when present."""
    names = list(images)
    main = next((c for c in MAIN_CAMERAS if c in names), next((c for c in names if c != BASE_CAMERA), None))
    if main is None:
        raise ValueError(f"no third-person camera among {names}")
    return {"main": main} | ({"base": BASE_CAMERA} if BASE_CAMERA in names else {})
