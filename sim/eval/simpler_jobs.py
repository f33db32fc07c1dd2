"""What ``simpler-eval`` evaluates, without a simulator: its settings, the named scene variants, the jobs (task x
variant x masking condition x episode), one episode's result and the summary over results.

A variant is a name for make kwargs over the task's prepackaged config (:class:`~ivm_ros_sim.simpler.env.
SimplerTaskEnv`'s ``variant``): ``visual_matching`` is the prepackaged config itself (SimplerEnv's "visual
matching": the real Bridge photo overlaid behind the scene); others come from :data:`VARIANTS`, from
``ivm_ros_sim.simpler.distractors.VARIANTS`` (our Bridge distractors, ``distractors_2`` / ``_4``), or are given
inline as ``NAME={"make_kwarg": ...}``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

import numpy as np
from ivm_ros_sim.eval.runs import stderr
from ivm_ros_sim.simpler.episodes import parse_json_object

#: SimplerEnv's WidowX "visual matching" tasks (Bridge; 24 object placements each)
WIDOWX_TASKS = ("widowx_carrot_on_plate", "widowx_spoon_on_towel", "widowx_stack_cube",
                "widowx_put_eggplant_in_basket")
#: name -> make kwargs over the task's prepackaged config
VARIANTS: dict[str, dict[str, Any]] = {"visual_matching": {}}
TRANSPORTS, BACKENDS = ("direct", "ros"), ("simpler", "double")


def known_variants() -> dict[str, dict[str, Any]]:
    """:data:`VARIANTS` plus our Bridge distractor levels (:data:`ivm_ros_sim.simpler.distractors.VARIANTS`)."""
    from ivm_ros_sim.simpler.distractors import VARIANTS as DISTRACTOR_VARIANTS

    return dict(VARIANTS) | dict(DISTRACTOR_VARIANTS)


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME`` (a known variant) or ``NAME={JSON object of make kwargs}`` -> (name, make kwargs); ValueError
    naming the known variants otherwise."""
    name, sep, text = spec.partition("=")
    if sep:
        return name, parse_json_object(text, f"--variant {name}: its make kwargs")
    known = known_variants()
    if name not in known:
        raise ValueError(f"unknown variant {name!r}; known: {sorted(known)} (or NAME='{{\"make_kwarg\": ...}}')")
    return name, dict(known[name])


@dataclasses.dataclass(frozen=True)
class SimplerSettings:
    """Everything that decides an episode's outcome besides its job (so it goes into the output's ``settings``).
    ``max_steps``: steps per episode (0: the env's own time limit, Bridge 60, eggplant 120)."""

    policy: str = "expert"  # expert | embedded | octo | module:Class
    model: str = "lite"  # masking predictor of the masking-on condition: lite | groundtruth | ... | module:Class
    policy_config: tuple[tuple[str, Any], ...] = ()
    model_config: tuple[tuple[str, Any], ...] = ()
    seed: int = 0
    max_steps: int = 0
    transport: str = "direct"  # direct: env -> masking -> policy in one process; ros: simpler/masking/policy nodes
    backend: str = "simpler"  # simpler: SimplerEnv; double: SimplerEnvDouble, the test stand-in without physics

    @property
    def privileged(self) -> bool:
        """The expert reads the simulator's state: no images, no masking."""
        return self.policy == "expert"

    def ground_truth(self, masking: bool) -> bool:
        """Masking with SimplerEnv's own instruction masks (``--model groundtruth``), not a predictor."""
        return masking and self.model == "groundtruth"

    def policy_settings(self, masking: bool) -> dict[str, Any]:
        """The policy's config for a masking condition: ``{masked}`` in a string value becomes ``masked`` or
        ``raw`` (e.g. ``checkpoint=out/simpler_{masked}.msgpack``: one policy per condition)."""
        word = "masked" if masking else "raw"
        return {k: v.replace("{masked}", word) if isinstance(v, str) else v for k, v in self.policy_config}

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["policy_config"], d["model_config"] = dict(self.policy_config), dict(self.model_config)
        if self.privileged:
            for key in ("model", "model_config"):
                d.pop(key)
        return d


@dataclasses.dataclass(frozen=True)
class Job:
    """One episode to run: SimplerEnv ``task``, ``episode`` (its object placement id), masking on or off, and the
    scene ``variant`` (name and make kwargs as a JSON object string)."""

    task: str
    episode: int
    masking: bool
    variant: str = "visual_matching"
    variant_kwargs: str = "{}"

    @property
    def key(self) -> str:
        """Unique name of the job within a run (resume and GIF file names)."""
        return f"{self.task}_{self.variant}_mask-{'on' if self.masking else 'off'}_ep{self.episode:03d}"

    def seed(self, base: int) -> int:
        """The env's reset seed: ``base + episode`` (the same for both masking conditions: paired episodes)."""
        return base + self.episode


def make_jobs(tasks: Iterable[str], episodes: Iterable[int], maskings: Iterable[bool],
              variants: dict[str, dict[str, Any]]) -> list[Job]:
    """Masking-major, then variant, task, episode (a ros worker restarts its nodes when the masking condition
    changes; an env is made again when the task or variant changes)."""
    eps = list(episodes)
    return [Job(t, e, m, v, json.dumps(kw, sort_keys=True)) for m in maskings for v, kw in variants.items()
            for t in tasks for e in eps]


@dataclasses.dataclass
class EpisodeResult:
    """One episode. ``success``: the env's success at the last step (SimplerEnv's own metric); ``ever_success``: at
    any step; ``first_success_step`` (-1: never; None: not known, over ROS); ``steps`` control steps; ``seconds``
    wall; ``worker`` ``host:pid``."""

    key: str
    task: str
    variant: str
    variant_kwargs: str
    masking: bool
    episode: int
    seed: int
    instruction: str
    success: bool
    ever_success: bool
    steps: int
    first_success_step: int | None = -1
    seconds: float = 0.0
    worker: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _rate(rows: list[EpisodeResult]) -> dict[str, float]:
    wins = [float(r.success) for r in rows]
    return {"success": float(np.mean(wins)) if wins else 0.0, "stderr": stderr(wins), "n": len(wins)}


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    """``success`` (overall rate) with ``success_stderr``, ``per_task`` {task: rate}, ``per_masking`` {"on"/"off":
    rate}, ``conditions`` (one row per task x variant x masking: success, stderr, n, ever_success), ``n_episodes``
    and ``steps``."""
    groups: dict[tuple[str, str, str], list[EpisodeResult]] = {}
    for r in results:
        groups.setdefault((r.task, r.variant, "on" if r.masking else "off"), []).append(r)
    conditions = [{"task": t, "variant": v, "masking": m, **_rate(rows),
                   "ever_success": float(np.mean([x.ever_success for x in rows]))}
                  for (t, v, m), rows in sorted(groups.items())]
    overall = _rate(results)
    return {"success": overall["success"], "success_stderr": overall["stderr"],
            "per_task": {t: _rate([r for r in results if r.task == t])["success"]
                         for t in dict.fromkeys(r.task for r in results)},
            "per_masking": {m: _rate([r for r in results if r.masking == (m == "on")])["success"]
                            for m in ("on", "off") if any(r.masking == (m == "on") for r in results)},
            "conditions": conditions, "n_episodes": len(results), "steps": sum(r.steps for r in results)}
