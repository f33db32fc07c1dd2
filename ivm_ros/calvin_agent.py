"""IVM masking + a policy behind CALVIN's model interface, for users of the official evaluation code.

CALVIN's ``evaluate_policy.py`` drives any object with ``reset()`` and ``step(obs, goal) -> action``
(its ``CalvinBaseModel``). :class:`IvmCalvinModel` is such an object: it masks the static camera for the
language goal with a :class:`~ivm_ros.pipeline.MaskingPipeline` (or passes it through unmasked), runs a
:class:`~ivm_ros.policies.base.Policy` on it (plus the gripper camera and ``robot_obs``) and returns one
relative action. No ROS, no simulator imports: it runs inside the official code's process.

Observations, either layout: the official ``{"rgb_obs": {"rgb_static": (200, 200, 3) uint8, "rgb_gripper":
(84, 84, 3) uint8}, "robot_obs": (15,), ...}`` or the flat ``{"rgb_static", "rgb_gripper", "robot_obs"}`` of
:mod:`ivm_ros_sim`. Actions: (7,) float64 ``dx dy dz droll dpitch dyaw gripper``, CALVIN's relative actions
(1.0 = 2 cm / 0.05 rad per step) clipped to [-1, 1], with the gripper as exactly +1.0 open / -1.0 closed, which
is what the official env's relative action space takes (:func:`calvin_action`).

Usage with the official code: its ``evaluate_policy(model, env, epoch, eval_log_dir)`` with the raw env of its
``make_env`` / ``calvin_env.envs.play_table_env.get_env`` (numpy observations; not calvin_agent's own model
wrapper, which turns them into normalised tensors). Checked there: tools/calvin_official/check_adapter.py,
docs/calvin_official_adapter.md::

    from ivm_ros.calvin_agent import IvmCalvinModel
    model = IvmCalvinModel.from_names(policy="embedded", model="lite")   # masking on
    model = IvmCalvinModel.from_names(policy="embedded", model=None,
                                      policy_config={"variant": "raw"})  # masking off
    evaluate_policy(model, make_env(dataset_path), epoch=0, eval_log_dir="out/calvin")
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ivm_ros.pipeline import MaskingPipeline
from ivm_ros.policies.base import Observation, Policy

_log = logging.getLogger(__name__)


def camera_images(obs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """(static (H, W, 3) uint8, gripper (h, w, 3) uint8 or None) from either observation layout."""
    rgb = obs.get("rgb_obs", obs)
    if "rgb_static" not in rgb:
        raise KeyError("observation has no 'rgb_static' image (neither obs['rgb_obs']['rgb_static'] nor "
                       "obs['rgb_static'])")
    static = np.asarray(rgb["rgb_static"])
    gripper = rgb.get("rgb_gripper")
    return static, None if gripper is None else np.asarray(gripper)


def calvin_action(a: np.ndarray) -> np.ndarray:
    """CALVIN's relative action from a policy's (7,) row: motion clipped to [-1, 1] (the official env scales the
    action as given, with no clip: 1.0 = 2 cm / 0.05 rad; its data and ours are clipped to [-1, 1]) and the gripper
    as exactly +1.0 / -1.0 (the official robot asserts ``gripper_action in (-1, 1)``). ValueError for NaN / inf
    (the official env would carry it into its target pose for the rest of the chain)."""
    a = np.asarray(a, np.float64).reshape(7)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"the policy returned a non-finite action: {a}")
    out = np.clip(a, -1.0, 1.0)
    out[6] = 1.0 if a[6] > 0 else -1.0
    return out


class IvmCalvinModel:
    """CALVIN's model interface over masking + policy.

    Args:
        policy: the action predictor; reset with the goal sentence at every :meth:`reset` + first step.
        pipeline: masks ``rgb_static`` for the goal; None feeds the raw camera (masking off).
        use_wrist / use_proprio: pass ``rgb_gripper`` / ``robot_obs`` to the policy.
        wrist_pipeline: masks ``rgb_gripper`` for the goal too (its fail-safe should be ``off``: nothing named in
            view gives a blank frame); required by a policy that learnt on masked wrist views (its ``describe()``
            has ``wrist_masking``), refused with masking off.

    After each :meth:`step`, :attr:`last_seen` is the (H, W, 3) uint8 image the policy saw (None for a frame the
    fail-safe dropped: that step holds still) and
    :attr:`last_result` the masking result (None when masking is off).
    """

    def __init__(self, policy: Policy, pipeline: MaskingPipeline | None = None, use_wrist: bool = True,
                 use_proprio: bool = True, wrist_pipeline: MaskingPipeline | None = None) -> None:
        wants = policy.describe().get("wrist_masking")
        if wants and use_wrist and wrist_pipeline is None:
            raise ValueError(f"this policy learnt on wrist views masked by {wants} masks; give it a wrist_pipeline "
                             "(calvin-eval: --wrist-model groundtruth, or --model groundtruth for both cameras)")
        if wrist_pipeline is not None and pipeline is None:
            raise ValueError("a wrist_pipeline without a pipeline: masking is off for the static camera")
        self.policy = policy
        self.pipeline = pipeline
        self.wrist_pipeline = wrist_pipeline
        self.use_wrist = use_wrist
        self.use_proprio = use_proprio
        self._goal: str | None = None
        self.last_seen: np.ndarray | None = None
        self.last_result = None

    @classmethod
    def from_names(cls, policy: str = "embedded", model: str | None = "lite",
                   policy_config: dict[str, Any] | None = None, model_config: dict[str, Any] | None = None,
                   masking_config: Any = None) -> IvmCalvinModel:
        """Loads a registered (or ``module:Class``) policy and predictor by name; ``model=None``: no masking. The
        embedded policy with ``lite`` masking gets the lite checkpoint it learnt on unless ``model_config`` names
        one (:func:`~ivm_ros.policies.embedded.checkpoint.pair_lite`; a warning when it names another)."""
        from ivm_ros.models.registry import load_predictor
        from ivm_ros.policies.registry import load_policy

        if policy == "embedded" and model == "lite":
            from ivm_ros.policies.embedded.checkpoint import pair_lite

            model_config, note = pair_lite(policy_config or {}, model_config or {})
            if note:
                _log.log(logging.WARNING if note.startswith("warning") else logging.INFO, note)
        pol = load_policy(policy, policy_config or {})
        pipe = None if model is None else MaskingPipeline(load_predictor(model, model_config or {}), masking_config)
        return cls(pol, pipe)

    def reset(self) -> None:
        """Called by CALVIN at the start of every subtask: the next step conditions on its goal afresh."""
        self._goal = None

    def see(self, obs: dict[str, Any], goal: str) -> np.ndarray | None:
        """The static image the policy gets for ``goal``: masked, the raw frame when masking is off, or None when
        the fail-safe drops the frame (``fail_safe="drop"``: the policy is not asked; the arm holds)."""
        static, _ = camera_images(obs)
        if self.pipeline is None:
            self.last_result = None
            return static
        result = self.pipeline.run(static, "rgb8", goal)
        self.last_result = result
        if result.fail_safe_action == "dropped":
            return None
        masked = np.asarray(result.masked)
        if masked.shape != static.shape:  # crop modes that do not resize back
            import cv2

            masked = cv2.resize(masked, (static.shape[1], static.shape[0]), interpolation=cv2.INTER_AREA)
        return masked

    def step(self, obs: dict[str, Any], goal: str) -> np.ndarray:
        """One (7,) float64 action for ``obs`` and the language ``goal``."""
        if self._goal != goal:
            self.policy.reset(goal)
            self._goal = goal
        seen = self.see(obs, goal)
        self.last_seen = seen
        if seen is None:  # dropped frame: hold still with the gripper as it is
            return np.array([0.0] * 6 + [1.0 if float(obs["robot_obs"][14]) > 0 else -1.0])
        _, wrist = camera_images(obs)
        if self.wrist_pipeline is not None and wrist is not None and self.use_wrist:
            wrist = np.asarray(self.wrist_pipeline.run(wrist, "rgb8", goal).masked)
        proprio = np.asarray(obs["robot_obs"], np.float32) if self.use_proprio else None
        actions = self.policy.act(Observation(seen, wrist if self.use_wrist else None, proprio))
        return calvin_action(np.asarray(actions, np.float64).reshape(-1, 7)[0])

    def close(self) -> None:
        self.policy.close()
        for pipeline in (self.pipeline, self.wrist_pipeline):
            if pipeline is not None:
                pipeline.close()
