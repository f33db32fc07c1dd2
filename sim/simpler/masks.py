"""Ground-truth instruction masks from SimplerEnv's actor-level segmentation (ROS-free).

The rule: the mask covers the actors the task's instruction names, the object to move (``source``: the carrot,
spoon, green cube, eggplant, coke can) and where it goes (``target``: plate, towel, yellow cube, basket; grasp tasks
have none), and nothing else: never the robot, the table or the real Bridge photo behind them, and never another
object (a distractor, even a look-alike). Occluded parts are not in the mask (it is what the camera sees).
Checked on the real SimplerEnv (WidowX, episode 0): carrot 1842 + plate 8956 px of 640x480, spoon 2240 + towel
9805, green 1978 + yellow cube 2157. In ``widowx_put_eggplant_in_basket`` the target actor is
``dummy_sink_target_plane`` (the basket belongs to the sink stage, not an actor): the mask covers the eggplant and
the basket's floor region (12066 px), not the basket's rim. The WidowX base camera saw none of them at reset.

SimplerEnv renders ``obs["image"][camera]["Segmentation"]`` (H, W, 4) uint32 whose ``[..., 1]`` is the actor id
(:class:`~ivm_ros_sim.simpler.env.Frame` keeps that channel); the task's actors and their ids come from
:func:`~ivm_ros_sim.simpler.env.task_actors`. The mask is for the ``groundtruth`` predictor path (an evaluation
sets ``GroundTruthPredictor.mask`` from :func:`gt_mask` before each frame) and for data engines.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ivm_ros_sim.simpler.env import Frame, SimplerTaskEnv

ROLES = ("source", "target")


def relevant_ids(actors: dict[str, tuple[int, str]], roles: Iterable[str] = ROLES) -> tuple[int, ...]:
    """Actor ids of ``roles`` among ``actors`` (role -> (id, name)); roles the task lacks are skipped."""
    return tuple(actors[role][0] for role in roles if role in actors)


def mask_from_segmentation(seg: np.ndarray, ids: Iterable[int]) -> np.ndarray:
    """(H, W) bool: the pixels of ``seg`` ((H, W) actor ids, or SimplerEnv's raw (H, W, 4) with ids in
    ``[..., 1]``) whose actor is in ``ids``."""
    seg = np.asarray(seg)
    if seg.ndim == 3:
        seg = seg[..., 1]
    return np.isin(seg, np.fromiter(ids, dtype=np.int64))


def gt_mask(env: SimplerTaskEnv, frame: Frame, camera: str = "main", roles: Iterable[str] = ROLES) -> np.ndarray:
    """The task's (H, W) bool instruction mask of ``frame``'s ``camera`` (``main`` or ``base``). ValueError when
    the frame has no segmentation (a variant made without ``camera_cfgs={"add_segmentation": True}``)."""
    if camera not in frame.segmentation:
        raise ValueError(f"frame has no segmentation for camera {camera!r}; SimplerEnv needs "
                         "camera_cfgs={'add_segmentation': True} (the prepackaged configs set it)")
    return mask_from_segmentation(frame.segmentation[camera], relevant_ids(env.actors(), roles))
