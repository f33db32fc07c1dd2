"""Several cameras with one instruction: which masking_node each camera gets (its namespace, topics and own
parameters), from the launch file's ``cameras`` and ``camera_params`` arguments. No ROS and no launch here:
launch/manipulation.launch.py turns each :class:`CameraNode` into a launch_ros ``Node``, and
tools/multi_camera_bench.py into a process command line.

``cameras``: a YAML list of Image topics, ``[/cam_front/image_raw, /wrist/image_raw]``; each gets a masking_node
in its own namespace named after the topic (``/cam_front/masking_node``, ``/wrist/masking_node``: outputs
``/cam_front/masking_node/masked_image`` ...). ``camera_params``: a YAML list of the same length (or shorter:
the rest get nothing extra) whose items are parameter dicts or parameter files applied on top of the shared
``params_file``, e.g. ``[{}, {model: keep_all}]`` (the wrist passed through unmasked) or ``[{}, {predictor_rate:
2.0}]`` (the wrist's mask predicted at 2 Hz and carried by optical flow between). Relative topic names resolve
against the launch's namespace first, so every node follows the same instruction topic.

A ``params_file`` that keys its section ``masking_node:`` (the shipped config/masking_node.yaml uses
``/**/masking_node:``, which ROS applies in every namespace) reaches only a node of that name in the root
namespace; :func:`plain_section` reads that section so that the launch can hand it to the namespaced nodes as
their base (a ``/**/masking_node:`` or ``/wrist/masking_node:`` section of
the same file still applies, and wins).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import yaml

#: Trailing topic parts that name the image, not the camera (``/cam/color/image_raw`` -> ``cam_color``).
_IMAGE_PARTS = ("image_raw", "image_rect", "image_rect_color", "image_color", "image", "compressed")


@dataclasses.dataclass(frozen=True)
class CameraNode:
    """One camera's masking_node: ``namespace`` (absolute), the input ``topic`` and ``instruction`` topic
    (absolute), and ``parameters`` (dicts or files) on top of the shared ones."""

    name: str
    namespace: str
    topic: str
    instruction: str
    parameters: tuple[dict[str, Any] | str, ...] = ()

    @property
    def node(self) -> str:
        """The masking node's fully qualified name."""
        return f"{self.namespace}/masking_node"

    @property
    def remappings(self) -> list[tuple[str, str]]:
        return [("image_raw", self.topic), ("image_raw/compressed", f"{self.topic}/compressed"),
                ("instruction", self.instruction)]

    @property
    def viewer_remappings(self) -> list[tuple[str, str]]:
        """viewer_node's inputs pointed at this camera and its masking node."""
        return [("image_raw", self.topic), ("image_raw/compressed", f"{self.topic}/compressed"),
                ("masking_node/mask", f"{self.node}/mask"),
                ("masking_node/masked_image", f"{self.node}/masked_image"), ("instruction", self.instruction)]


def _yaml_list(text: str, what: str) -> list[Any]:
    text = text.strip()
    if not text:
        return []
    value = yaml.safe_load(text)
    if isinstance(value, str):  # one camera without brackets
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a YAML list like [/cam_front/image_raw, /wrist/image_raw], got {text!r}")
    return value


def resolve(topic: str, namespace: str) -> str:
    """``topic`` as an absolute name: relative names are taken in ``namespace`` (a leading ``~`` is refused)."""
    topic = topic.strip()
    if not topic or topic.startswith("~"):
        raise ValueError(f"camera and instruction topics must be plain names, got {topic!r}")
    if topic.startswith("/"):
        return topic
    return "/" + "/".join(p for p in (*namespace.strip("/").split("/"), topic) if p)


def camera_name(topic: str) -> str:
    """A namespace-safe name for the camera on ``topic``: its parts without the trailing image parts, joined
    by ``_`` (``/wrist/image_raw`` -> ``wrist``, ``/camera/color/image_raw`` -> ``camera_color``); empty when
    nothing is left (``/image_raw``)."""
    parts = [p for p in topic.strip("/").split("/") if p]
    while parts and parts[-1] in _IMAGE_PARTS:
        parts.pop()
    name = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))
    return f"cam_{name}" if name[:1].isdigit() else name


def plain_section(params_file: str, node: str = "masking_node") -> dict[str, Any]:
    """The ``ros__parameters`` of ``params_file``'s section keyed by the bare node name (``masking_node:``), which
    ROS would not apply to a namespaced node; empty when the file has none."""
    with open(params_file, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    section = data.get(node) if isinstance(data, dict) else None
    params = section.get("ros__parameters") if isinstance(section, dict) else None
    return dict(params) if isinstance(params, dict) else {}


def plan_cameras(cameras: str, camera_params: str = "", namespace: str = "",
                 instruction_topic: str = "/instruction") -> list[CameraNode]:
    """The masking nodes for the ``cameras`` launch argument (empty: none, the single-camera launch applies).
    Raises ValueError for a malformed list, more ``camera_params`` than cameras, or a parameter item that is
    neither a dict nor a file name."""
    topics = [str(t) for t in _yaml_list(cameras, "cameras")]
    extras = _yaml_list(camera_params, "camera_params")
    if len(extras) > len(topics):
        raise ValueError(f"camera_params has {len(extras)} items for {len(topics)} cameras")
    instruction = resolve(instruction_topic, namespace)
    out: list[CameraNode] = []
    taken: set[str] = set()
    for i, raw in enumerate(topics):
        topic = resolve(raw, namespace)
        name = camera_name(topic) or f"camera{i}"
        if name in taken:
            name = f"{name}_{i}"
        taken.add(name)
        extra = extras[i] if i < len(extras) else None
        if extra is not None and not isinstance(extra, (dict, str)):
            raise ValueError(f"camera_params[{i}] must be a dict of parameters or a params file, got {extra!r}")
        params = () if extra in (None, "", {}) else (extra,)
        out.append(CameraNode(name, resolve(name, namespace), topic, instruction, params))
    return out
