"""What one ``simpler-eval`` worker holds and runs (direct transport, no ROS): a SimplerEnv task env, one agent per
masking condition, and the episode loop.

Direct transport: :class:`~ivm_ros_sim.simpler.env.SimplerTaskEnv` -> :class:`~ivm_ros.pipeline.MaskingPipeline`
(the masking_node's, with its default masking settings) -> the policy, in one process; what the policy returns is
executed as policy_node executes it (row 0 of the plan, clipped to +-1, gripper +1 open / -1 closed) and converted
to SimplerEnv's action by the env (:mod:`ivm_ros_sim.simpler.actions`). An episode runs, as SimplerEnv's own
evaluation does, until the env's time limit (or ``max_steps``); its success is the env's success at the last step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from ivm_ros_sim.eval.gt_predictor import GroundTruthPredictor
from ivm_ros_sim.eval.runs import worker_id
from ivm_ros_sim.eval.simpler_jobs import EpisodeResult, Job, SimplerSettings
from ivm_ros_sim.simpler.env import Frame, SimplerTaskEnv

from ivm_ros.calvin_agent import IvmCalvinModel, calvin_action
from ivm_ros.policies.base import Observation

#: called after every action with (frame the agent saw, agent)
StepHook = Callable[[Frame, Any], None]


class SimplerAgent(IvmCalvinModel):
    """Masking (or none) + a policy over SimplerEnv frames: the third-person camera, masked for the instruction,
    is the policy's primary image; no wrist image (SimplerEnv's WidowX has none); the frame's WidowX proprio
    (:mod:`~ivm_ros_sim.simpler.proprio`) when the policy says it takes proprio (``proprio_spec()`` not None: the
    embedded policy). ``ground_truth``: the pipeline's predictor is a :class:`GroundTruthPredictor` fed the task's
    mask (:mod:`ivm_ros_sim.simpler.masks`) before each frame."""

    def __init__(self, policy: Any, pipeline: Any = None, ground_truth: GroundTruthPredictor | None = None) -> None:
        spec = getattr(policy, "proprio_spec", lambda: None)()
        super().__init__(policy, pipeline, use_wrist=False, use_proprio=spec is not None)
        self.ground_truth = ground_truth

    def act(self, frame: Frame, env: SimplerTaskEnv) -> np.ndarray:
        """Policy action (7,) float64 for ``frame`` of ``env`` (its instruction); a frame the masking fail-safe
        dropped holds still with the gripper as it is."""
        instruction = env.instruction
        if self._goal != instruction:
            self.policy.reset(instruction)
            self._goal = instruction
        if self.ground_truth is not None:
            from ivm_ros_sim.simpler.masks import gt_mask

            self.ground_truth.mask = gt_mask(env, frame)
        seen = self.see({"rgb_static": frame.images["main"]}, instruction)
        self.last_seen = seen
        if seen is None:
            return np.array([0.0] * 6 + [env.gripper_action])
        proprio = frame.proprio if self.use_proprio else None
        if self.use_proprio and proprio is None:
            raise ValueError(f"the policy takes proprio, but {env.task}'s frames carry none (WidowX tasks only)")
        actions = self.policy.act(Observation(seen, proprio=proprio))
        return calvin_action(np.asarray(actions, np.float64).reshape(-1, 7)[0])


class SimplerExpertAgent:
    """The scripted expert (``ivm_ros_sim.simpler.expert.SimplerExpert``, privileged: it reads the env's state)
    behind the agent interface; made again when the env changes."""

    last_seen = None

    def __init__(self) -> None:
        from ivm_ros_sim.simpler.expert import SimplerExpert

        self.expert_class = SimplerExpert
        self.expert: Any = None
        self.env: SimplerTaskEnv | None = None
        self._fresh = True

    def reset(self) -> None:
        self._fresh = True

    def act(self, frame: Frame, env: SimplerTaskEnv) -> np.ndarray:
        if self.expert is None or self.env is not env:
            self.expert, self.env = self.expert_class(env), env
        if self._fresh:
            self.expert.reset()
            self._fresh = False
        return np.asarray(self.expert.act(frame), np.float64)

    def close(self) -> None:
        pass


def build_agent(settings: SimplerSettings, masking: bool) -> Any:
    """The agent of ``settings`` for one masking condition (``reset()``, ``act(frame, env)``, ``last_seen``)."""
    if settings.privileged:
        return SimplerExpertAgent()
    from ivm_ros.models.registry import load_predictor
    from ivm_ros.pipeline import MaskingPipeline
    from ivm_ros.policies.registry import load_policy

    policy = load_policy(settings.policy, settings.policy_settings(masking))
    if not masking:
        return SimplerAgent(policy)
    if settings.ground_truth(masking):
        predictor = GroundTruthPredictor()
        return SimplerAgent(policy, MaskingPipeline(predictor), predictor)
    return SimplerAgent(policy, MaskingPipeline(load_predictor(settings.model, dict(settings.model_config))))


def run_episode(env: SimplerTaskEnv, agent: Any, job: Job, seed: int, max_steps: int = 0,
                hook: StepHook | None = None) -> EpisodeResult:
    """One episode of ``job`` from ``env.reset(seed, job.episode)`` until the env's time limit or ``max_steps``
    (0: none); see the module docstring."""
    frame = env.reset(seed, job.episode)
    agent.reset()
    first, steps = -1, 0
    while not frame.truncated and not (max_steps and steps >= max_steps):
        action = agent.act(frame, env)
        if hook is not None:
            hook(frame, agent)
        frame = env.step(action)
        steps += 1
        if frame.success and first < 0:
            first = steps
    return EpisodeResult(job.key, job.task, job.variant, job.variant_kwargs, job.masking, job.episode, seed,
                         env.instruction, bool(frame.success), first >= 0, steps, first)


def env_maker(backend: str) -> Any:
    """The env factory of ``backend``: SimplerEnvDouble's for ``double``; for ``simpler``
    :func:`~ivm_ros_sim.simpler.env.make_task_env` (SimplerEnv plus our variants' make kwargs, e.g. ``distractors``)."""
    if backend == "double":
        from ivm_ros_sim.simpler.double import SimplerEnvDouble

        return SimplerEnvDouble.make
    from ivm_ros_sim.simpler.env import make_task_env

    return make_task_env


class SimplerWorker:
    """Runs jobs with one env (made again when the task or variant changes) and one agent per masking condition
    (built on first use)."""

    def __init__(self, settings: SimplerSettings) -> None:
        self.settings = settings
        self.make = env_maker(settings.backend)
        self.env: SimplerTaskEnv | None = None
        self.agents: dict[bool, Any] = {}

    def env_for(self, job: Job) -> SimplerTaskEnv:
        variant = json.loads(job.variant_kwargs)
        if self.env is None or self.env.task != job.task or self.env.variant != variant:
            if self.env is not None:
                self.env.close()
                self.env = None
            self.env = SimplerTaskEnv(job.task, variant, self.make)
        return self.env

    def run(self, job: Job, record: bool = False) -> tuple[EpisodeResult, list[np.ndarray]]:
        """(result, frames): frames are (H, 2W, 3) uint8 camera | what the policy saw, when ``record``."""
        env = self.env_for(job)
        if job.masking not in self.agents:
            self.agents[job.masking] = build_agent(self.settings, job.masking)
        frames: list[np.ndarray] = []

        def keep(frame: Frame, agent: Any) -> None:
            cam = frame.images["main"]
            seen = agent.last_seen
            frames.append(np.concatenate([cam, cam if seen is None or seen.shape != cam.shape else seen], axis=1))

        t0 = time.perf_counter()
        result = run_episode(env, self.agents[job.masking], job, job.seed(self.settings.seed),
                             self.settings.max_steps, keep if record else None)
        result.seconds, result.worker = time.perf_counter() - t0, worker_id()
        return result, frames

    def close(self) -> None:
        for agent in self.agents.values():
            agent.close()
        if self.env is not None:
            self.env.close()


def make_simpler_worker(settings: SimplerSettings, index: int | None = None) -> Any:
    """The worker for the settings' transport (the fan-out's factory); ``index`` (a Ray actor's) gives a ros worker
    its own ROS domain."""
    if settings.transport == "ros":
        import os

        from ivm_ros_sim.eval.simpler_ros import RosSimplerWorker

        base = int(os.environ.get("ROS_DOMAIN_ID", "0"))
        return RosSimplerWorker(settings, None if index is None else (base + 1 + index) % 101)
    return SimplerWorker(settings)


def check_settings(settings: SimplerSettings, tasks: list[str], masking_on: bool) -> None:
    """Fails early, in the driver, for what a worker could not build (ValueError or PluginLoadError saying which):
    a transport or backend, a task the backend lacks, SimplerEnv missing, the expert over ROS, a policy
    or predictor that cannot load, ground-truth masks over ROS, a policy taking proprio on a Google-robot task
    over ROS."""
    from importlib.util import find_spec

    from ivm_ros_sim.eval.simpler_jobs import BACKENDS, TRANSPORTS
    from ivm_ros_sim.simpler import double, env

    if settings.transport not in TRANSPORTS or settings.backend not in BACKENDS:
        raise ValueError(f"transport must be one of {TRANSPORTS} and backend one of {BACKENDS}, got "
                         f"{settings.transport!r} / {settings.backend!r}")
    if settings.max_steps < 0:
        raise ValueError(f"max_steps must be >= 0 (0: the env's time limit), got {settings.max_steps}")
    if settings.backend == "double":
        known: Any = double.DOUBLE_TASKS
    elif find_spec("simpler_env") is None and find_spec("mani_skill2_real2sim") is None:
        raise ValueError(f"SimplerEnv is not installed. Fix: {env.INSTALL} (or --backend double, the test stand-in)")
    else:
        known = env.TASKS if find_spec("simpler_env") is None else None  # simpler_env.make knows its own
    bad = [t for t in tasks if known is not None and t not in known]
    if bad or not tasks:
        raise ValueError(f"unknown task(s) {bad} for backend {settings.backend}; known: {sorted(known or [])}")
    if settings.privileged:
        if settings.transport == "ros":
            raise ValueError("--transport ros needs a policy that runs in policy_node; the expert reads the "
                             "simulator's state and runs only with --transport direct")
        return
    from ivm_ros.models.registry import resolve_class as resolve_predictor
    from ivm_ros.policies.registry import resolve_class

    resolve_class(settings.policy)
    if settings.transport == "ros":
        from ivm_ros_sim.eval.simpler_ros import check_ros_policy

        check_ros_policy(settings, tasks)
    if masking_on and settings.ground_truth(True):
        if settings.transport == "ros":
            raise ValueError("--model groundtruth runs only with --transport direct (masks from the simulator's state)")
    elif masking_on:
        resolve_predictor(settings.model)
