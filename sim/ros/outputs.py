"""What sim_node publishes: its publishers (:class:`SimOutputs`) and the messages built from simulator values
(clock, camera info, joint state, tcp pose, the labelled layouts of ``robot_obs`` / ``scene_obs``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from ivm_ros_sim.calvin.scene import ROBOT_JOINT_NAMES, ROBOT_OBS_LABELS, SCENE_OBS_LABELS, CalvinScene
from ivm_ros_sim.ros.episodes import stamp
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64MultiArray, Header, MultiArrayDimension, MultiArrayLayout, String

from ivm_ros.ros import diagnostics, qos
from ivm_ros.ros.conversions import array_to_image

#: env camera name -> topic prefix
CAMERA_TOPICS = {"static": "camera", "gripper": "gripper_camera"}


class SimOutputs:
    """sim_node's publishers (``pubs``: key -> publisher) and one tick's messages, all with one stamp (``/clock``
    first). ``frames`` maps each env camera to its frame id; ``cameras`` is ``env.camera_info()``."""

    def __init__(self, node: Node, out: QoSProfile, cameras: dict[str, dict[str, Any]], frames: dict[str, str],
                 world_frame: str) -> None:
        self.pubs: dict[str, Any] = {}
        for prefix in CAMERA_TOPICS.values():
            self.pubs[f"{prefix}/image_raw"] = node.create_publisher(Image, f"{prefix}/image_raw", out)
            self.pubs[f"{prefix}/camera_info"] = node.create_publisher(CameraInfo, f"{prefix}/camera_info", out)
        self.pubs["clock"] = node.create_publisher(Clock, "/clock", qos.profile("reliable", 1))
        self.pubs["robot_state"] = node.create_publisher(JointState, "~/robot_state", out)
        self.pubs["tcp_pose"] = node.create_publisher(PoseStamped, "~/tcp_pose", out)
        self.pubs["robot_obs"] = node.create_publisher(Float64MultiArray, "~/robot_obs", out)
        self.pubs["scene_obs"] = node.create_publisher(Float64MultiArray, "~/scene_obs", out)
        self.pubs["instruction"] = node.create_publisher(String, "instruction", qos.latched())
        self.pubs["success"] = node.create_publisher(Bool, "~/success", qos.latched())
        self.pubs["diagnostics"] = node.create_publisher(diagnostics.DiagnosticArray, "/diagnostics", 10)
        self.frames, self.world_frame = frames, world_frame
        self.camera_infos = {name: camera_info(spec, frames[name]) for name, spec in cameras.items()}
        self.layouts = {"robot_obs": layout("robot_obs", ROBOT_OBS_LABELS),
                        "scene_obs": layout("scene_obs", SCENE_OBS_LABELS)}
        self.success_sent: bool | None = None

    def publish_instruction(self, instruction: str) -> None:
        """A new episode's sentence (latched); the next tick publishes ``~/success`` again."""
        self.pubs["instruction"].publish(String(data=instruction))
        self.success_sent = None

    def publish_tick(self, ticks: int, obs: dict[str, np.ndarray], scene: CalvinScene, render_gripper: bool,
                     success: bool) -> None:
        """One observation at sim time ``ticks``: clock, camera images + infos, robot state, tcp pose,
        robot_obs / scene_obs, and ``~/success`` when it changed."""
        pubs = self.pubs
        msg = clock(ticks)
        pubs["clock"].publish(msg)
        now = msg.clock
        # State first, then the gripper camera, then the static camera: a subscriber that pairs a static frame
        # with the newest state and wrist image (policy_node) finds this tick's already there.
        pubs["robot_state"].publish(joint_state(Header(stamp=now), ROBOT_JOINT_NAMES, *scene.robot_joint_states()))
        pubs["tcp_pose"].publish(pose(Header(stamp=now, frame_id=self.world_frame), *scene.tcp_pose()))
        for key, lay in self.layouts.items():
            pubs[key].publish(Float64MultiArray(layout=lay, data=obs[key].tolist()))
        for name in ("gripper", "static") if render_gripper else ("static",):
            prefix = CAMERA_TOPICS[name]
            header = Header(stamp=now, frame_id=self.frames[name])
            pubs[f"{prefix}/image_raw"].publish(array_to_image(obs[f"rgb_{name}"], "rgb8", header))
            info = self.camera_infos[name]
            info.header.stamp = now
            pubs[f"{prefix}/camera_info"].publish(info)
        if success != self.success_sent:
            pubs["success"].publish(Bool(data=success))
            self.success_sent = success


def clock(ticks: int) -> Clock:
    """/clock at ``ticks`` control periods of sim time."""
    msg = Clock()
    msg.clock.sec, msg.clock.nanosec = stamp(ticks)
    return msg


def camera_info(spec: dict[str, Any], frame_id: str) -> CameraInfo:
    """Pinhole CameraInfo (no distortion) from one camera of ``CalvinSceneEnv.camera_info()``; only the stamp
    changes per tick."""
    k = np.asarray(spec["k"], dtype=np.float64)
    msg = CameraInfo()
    msg.header.frame_id = frame_id
    msg.width, msg.height = int(spec["width"]), int(spec["height"])
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = k.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    msg.p = np.hstack([k, np.zeros((3, 1))]).ravel().tolist()
    return msg


def joint_state(header: Header, names: tuple[str, ...], position: np.ndarray, velocity: np.ndarray,
                effort: np.ndarray) -> JointState:
    msg = JointState(header=header, name=list(names))
    msg.position, msg.velocity, msg.effort = position.tolist(), velocity.tolist(), effort.tolist()
    return msg


def pose(header: Header, position: np.ndarray, quat_xyzw: np.ndarray) -> PoseStamped:
    msg = PoseStamped(header=header)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in quat_xyzw)  # PyBullet quaternions are xyzw, as ROS
    return msg


def layout(name: str, labels: tuple[str, ...]) -> MultiArrayLayout:
    """One dimension labelled ``name: field,field,...`` so a reader knows each value's meaning."""
    return MultiArrayLayout(
        dim=[MultiArrayDimension(label=f"{name}: " + ",".join(labels), size=len(labels), stride=len(labels))],
        data_offset=0,
    )
