"""What simpler_node publishes: its publishers and one tick's messages (``/clock`` first, then the WidowX proprio,
the base camera and the third-person camera, all of one tick), the latched instruction and ``~/success``."""

from __future__ import annotations

from typing import Any

from ivm_ros_sim.ros.outputs import camera_info, layout
from ivm_ros_sim.simpler.env import Frame
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Bool, Float64MultiArray, Header, String

from ivm_ros.policies.embedded.robots import WIDOWX_PROPRIO
from ivm_ros.ros import diagnostics, qos
from ivm_ros.ros.conversions import array_to_image

#: camera role (see ivm_ros_sim.simpler.env.camera_roles) -> topic prefix
CAMERA_TOPICS = {"main": "camera", "base": "base_camera"}


class SimplerOutputs:
    """simpler_node's publishers (``pubs``: key -> publisher); ``frames``: camera role -> frame id."""

    def __init__(self, node: Node, out: QoSProfile, frames: dict[str, str]) -> None:
        self.pubs: dict[str, Any] = {}
        for prefix in CAMERA_TOPICS.values():
            self.pubs[f"{prefix}/image_raw"] = node.create_publisher(Image, f"{prefix}/image_raw", out)
            self.pubs[f"{prefix}/camera_info"] = node.create_publisher(CameraInfo, f"{prefix}/camera_info", out)
        self.pubs["clock"] = node.create_publisher(Clock, "/clock", qos.profile("reliable", 1))
        self.pubs["proprio"] = node.create_publisher(Float64MultiArray, "~/proprio", out)
        self.pubs["instruction"] = node.create_publisher(String, "instruction", qos.latched())
        self.pubs["success"] = node.create_publisher(Bool, "~/success", qos.latched())
        self.pubs["diagnostics"] = node.create_publisher(diagnostics.DiagnosticArray, "/diagnostics", 10)
        self.frames = frames
        self.proprio_layout = layout("proprio", tuple(WIDOWX_PROPRIO))
        self.camera_infos: dict[str, CameraInfo] = {}
        self.success_sent: bool | None = None

    def new_episode(self, instruction: str, cameras: dict[str, dict[str, Any]]) -> None:
        """A new episode: its sentence (latched) and camera infos (``SimplerTaskEnv.camera_info()``); the next
        tick publishes ``~/success`` again."""
        self.camera_infos = {role: camera_info(spec, self.frames[role]) for role, spec in cameras.items()}
        self.pubs["instruction"].publish(String(data=instruction))
        self.success_sent = None

    def publish_tick(self, stamp: tuple[int, int], frame: Frame, publish_base: bool) -> None:
        """One observation at sim time ``stamp`` (sec, nanosec): clock, the frame's WidowX proprio (8,) as
        ``~/proprio`` (none for the Google robot), images + infos, ``~/success`` when it changed."""
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = stamp
        self.pubs["clock"].publish(msg)
        # proprio before the images: policy_node pairs a frame with the newest proprio, so it holds this tick's
        if frame.proprio is not None:
            data = [float(v) for v in frame.proprio]
            self.pubs["proprio"].publish(Float64MultiArray(layout=self.proprio_layout, data=data))
        # base camera first: a subscriber pairing a third-person frame with the newest base image finds this tick's
        for role in ("base", "main"):
            if role not in frame.images or (role == "base" and not publish_base):
                continue
            prefix = CAMERA_TOPICS[role]
            header = Header(stamp=msg.clock, frame_id=self.frames[role])
            self.pubs[f"{prefix}/image_raw"].publish(array_to_image(frame.images[role], "rgb8", header))
            info = self.camera_infos[role]
            info.header.stamp = msg.clock
            self.pubs[f"{prefix}/camera_info"].publish(info)
        if frame.success != self.success_sent:
            self.pubs["success"].publish(Bool(data=frame.success))
            self.success_sent = frame.success
