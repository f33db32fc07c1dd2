"""What one evaluation worker holds: an env and an agent built from :class:`EvalSettings`, and the chains it runs.

A worker is a plain object: run in this process (``--workers 0``) or as a Ray actor (:mod:`ivm_ros_sim.eval.fanout`).
It builds everything from the settings, so a chain's outcome depends only on the settings and the chain.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.masks import mask_from_segmentation, relevant_parts
from ivm_ros_sim.eval.gt_predictor import GroundTruthPredictor
from ivm_ros_sim.eval.protocol import EP_LEN, Chain, ChainResult, ExpertAgent, run_chain
from ivm_ros_sim.eval.runs import worker_id


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """Everything that decides a chain's outcome (and so goes into the output's ``settings``)."""

    policy: str = "expert"  # expert | embedded | octo | module:Class
    masking: bool = True
    model: str = "lite"  # masking predictor: lite | groundtruth | ivm | simple ... | module:Class
    wrist_model: str = ""  # the gripper camera's masks: groundtruth, or "" (none unless the policy learnt on them)
    policy_config: tuple[tuple[str, Any], ...] = ()
    model_config: tuple[tuple[str, Any], ...] = ()
    scene: str = "D"
    distraction: str = "none"
    distraction_cameras: str = "both"  # both | static | static-all | none (diagnostics: the gripper camera sees no
    # texture/lighting; static-all: nor the level's objects; none: neither camera sees the level)
    seed: int = 0
    max_steps: int = EP_LEN
    static_size: int = 200
    gripper_size: int = 84
    transport: str = "direct"  # direct: env -> masking -> policy in one process; ros: through sim/masking/policy nodes

    @property
    def ground_truth_masks(self) -> bool:
        """Masking with the simulator's own instruction masks (``--model groundtruth``), not a predictor."""
        return self.masking and self.model == "groundtruth"

    @property
    def segmentation(self) -> bool:
        """Whether the env renders segmentation: ground-truth masks for either camera."""
        return self.ground_truth_masks or (self.masking and self.wrist_model == "groundtruth")

    def paired(self) -> tuple[EvalSettings, str]:
        """(settings, note): lite masking of the embedded policy with the lite checkpoint the policy learnt on when
        ``model_config`` names none (:func:`~ivm_ros.policies.embedded.checkpoint.pair_lite`), and the note that
        says so, or warns that ``model_config`` names another."""
        if self.policy != "embedded" or not self.masking or self.model != "lite":
            return self, ""
        from ivm_ros.policies.embedded.checkpoint import PolicyCheckpointError, pair_lite

        try:
            cfg, note = pair_lite(self.policy_settings(), dict(self.model_config))
        except PolicyCheckpointError as exc:
            raise ValueError(f"the embedded policy: {exc}") from exc
        return dataclasses.replace(self, model_config=tuple(cfg.items())), note

    def policy_settings(self) -> dict[str, Any]:
        """The policy's config; the embedded policy defaults to the 34-task CALVIN variant trained for the masking
        condition (``calvin_masked`` / ``calvin_raw``)."""
        cfg = dict(self.policy_config)
        if self.policy == "embedded" and "checkpoint" not in cfg:
            cfg.setdefault("variant", "calvin_masked" if self.masking else "calvin_raw")
        return cfg


class GroundTruthMasked:
    """Sets the ground-truth predictor's mask from the observation's segmentation (and the wrist predictor's from
    the gripper camera's, when given), then runs ``inner``."""

    def __init__(self, inner: Any, env: CalvinSceneEnv, predictor: GroundTruthPredictor | None,
                 wrist_predictor: GroundTruthPredictor | None = None) -> None:
        self.inner, self.env, self.predictor, self.wrist_predictor = inner, env, predictor, wrist_predictor
        self._parts: tuple[Any, Any] | None = None

    def reset(self) -> None:
        self.inner.reset()
        self._parts = None

    def step(self, obs: dict[str, Any], goal: str) -> np.ndarray:
        key = (self.env.task, id(self.env.start_state))
        if self._parts is None or self._parts[0] != key:
            self._parts = (key, relevant_parts(self.env.scene, self.env.task, self.env.start_state))
        if self.predictor is not None:
            self.predictor.mask = mask_from_segmentation(obs["seg_static"], self._parts[1])
        if self.wrist_predictor is not None:
            self.wrist_predictor.mask = mask_from_segmentation(obs["seg_gripper"], self._parts[1])
        return self.inner.step(obs, goal)

    @property
    def last_seen(self) -> np.ndarray | None:
        return self.inner.last_seen


def build_agent(settings: EvalSettings, env: CalvinSceneEnv) -> Any:
    """The agent the settings name, with CALVIN's model interface (``reset()``, ``step(obs, goal)``)."""
    if settings.policy == "expert":
        return ExpertAgent(env)
    from ivm_ros.calvin_agent import IvmCalvinModel
    from ivm_ros.models.registry import load_predictor
    from ivm_ros.pipeline import MaskingPipeline
    from ivm_ros.policies.registry import load_policy

    policy = load_policy(settings.policy, settings.policy_settings())
    if not settings.masking:
        return IvmCalvinModel(policy)
    from ivm_ros.masking.config import MaskingConfig

    predictor = GroundTruthPredictor() if settings.ground_truth_masks else None
    static = predictor if predictor is not None else load_predictor(settings.model, dict(settings.model_config))
    # the gripper camera's ground truth: asked for, or for a policy that learnt on it with --model groundtruth
    wants = bool(policy.describe().get("wrist_masking"))
    wrist = (GroundTruthPredictor() if settings.wrist_model == "groundtruth" or (wants and predictor is not None)
             else None)
    wrist_pipeline = MaskingPipeline(wrist, MaskingConfig(fail_safe="off")) if wrist is not None else None  # blank
    model = IvmCalvinModel(policy, MaskingPipeline(static), wrist_pipeline=wrist_pipeline)
    return model if predictor is None and wrist is None else GroundTruthMasked(model, env, predictor, wrist)


def check_settings(settings: EvalSettings) -> None:
    """Fails early, in the driver, for what a worker could not build: an unknown scene, distraction level,
    transport, policy or predictor (ValueError or PluginLoadError saying which)."""
    from ivm_ros_sim.calvin import distractors
    from ivm_ros_sim.calvin.scene import check_scene

    check_scene(settings.scene)
    distractors.check_level(settings.distraction)
    if settings.transport not in ("direct", "ros"):
        raise ValueError(f"transport must be 'direct' or 'ros', got {settings.transport!r}")
    from ivm_ros_sim.calvin.env import check_distraction_cameras

    check_distraction_cameras(settings.distraction_cameras)
    if settings.distraction_cameras != "both" and settings.transport != "direct":
        raise ValueError(f"distraction_cameras {settings.distraction_cameras!r} is a diagnostic of the direct "
                         "transport (sim_node renders both cameras as the world is)")
    if settings.wrist_model not in ("", "groundtruth"):
        raise ValueError(f"wrist_model must be groundtruth or empty, got {settings.wrist_model!r} (no predictor of "
                         "wrist views exists yet)")
    if settings.wrist_model and (settings.transport != "direct" or not settings.masking):
        raise ValueError("wrist_model groundtruth needs masking on and the direct transport (masks from the "
                         "simulator's state)")
    if settings.policy == "embedded" and settings.masking and not (settings.ground_truth_masks or settings.wrist_model):
        from ivm_ros.policies.embedded.checkpoint import PolicyCheckpointError, wrist_masking_of

        try:
            wants = wrist_masking_of(settings.policy_settings())
        except PolicyCheckpointError as exc:
            raise ValueError(f"the embedded policy: {exc}") from exc
        if wants:
            raise ValueError("this embedded policy learnt on wrist views masked by the simulator's ground truth: "
                             "evaluate it with --wrist-model groundtruth (or --model groundtruth for both cameras)")
    if settings.max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {settings.max_steps}")
    if settings.policy != "expert":
        from ivm_ros.policies.registry import resolve_class

        resolve_class(settings.policy)
    if settings.policy != "expert" and settings.masking and not settings.ground_truth_masks:
        from ivm_ros.models.registry import resolve_class as resolve_predictor

        resolve_predictor(settings.model)


def make_worker(settings: EvalSettings, index: int | None = None) -> Any:
    """The worker for the settings' transport; ``index`` (a Ray actor's) gives a ros worker its own ROS domain."""
    if settings.transport == "ros":
        from ivm_ros_sim.eval.ros_transport import RosChainWorker

        base = int(os.environ.get("ROS_DOMAIN_ID", "0"))
        return RosChainWorker(settings, None if index is None else (base + 1 + index) % 101)
    if settings.transport != "direct":
        raise ValueError(f"transport must be 'direct' or 'ros', got {settings.transport!r}")
    return ChainWorker(settings)


class ChainWorker:
    """Runs chains with one env and one agent (built once). ``record`` chains keep their frames for GIFs."""

    def __init__(self, settings: EvalSettings) -> None:
        self.settings = settings
        needs_images = settings.policy != "expert"
        self.env = CalvinSceneEnv(settings.static_size, settings.gripper_size, render=needs_images,
                                  segmentation=settings.segmentation,
                                  max_steps=settings.max_steps, scene=settings.scene,
                                  distraction_cameras=settings.distraction_cameras)
        self.agent = build_agent(settings, self.env)

    def run(self, chain: Chain, record: bool = False) -> tuple[ChainResult, list[np.ndarray]]:
        """(result, frames): frames are (S, 2S, 3) uint8 camera | what the policy saw, when ``record``."""
        s, env = self.settings, self.env
        frames: list[np.ndarray] = []
        rendering = env.render
        env.render = rendering or record

        def keep(env_: CalvinSceneEnv, obs: dict[str, np.ndarray], agent: Any, _i: int) -> None:
            seen = getattr(agent, "last_seen", None)
            frames.append(np.concatenate([obs["rgb_static"], obs["rgb_static"] if seen is None else seen], axis=1))

        t0 = time.perf_counter()
        try:
            result = run_chain(env, self.agent, chain, s.distraction, s.seed, s.max_steps, keep if record else None)
        finally:
            env.render = rendering
        result.seconds = time.perf_counter() - t0
        result.worker = worker_id()
        return result, frames

    def close(self) -> None:
        close = getattr(self.agent, "close", None)
        if close is not None:
            close()
        self.env.close()
