"""Two cameras, one instruction, on real topics: the masking nodes ivm_ros/cameras.py plans (as the launch file
starts them) each mask their own camera, both follow the one instruction topic, and each keeps its own
parameters (the wrist passed through by keep_all)."""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import String
from support.ros import Spinner, wait_for

from ivm_ros.cameras import plan_cameras
from ivm_ros.ros import qos
from ivm_ros.ros.conversions import array_to_image, image_to_array
from ivm_ros.ros.masking_node import MaskingNode

CENTER = "support.predictors:CenterPredictorForTest"


def test_two_cameras_follow_one_instruction(ros_context):
    cameras = plan_cameras("[/cam_front/image_raw, /wrist/image_raw]", "[{}, {model: keep_all}]", "robot",
                           "instruction")
    nodes = []
    for cam in cameras:
        params = {"model": CENTER, "dilate_ratio": 0.0, "feather_ratio": 0.0, "diagnostics_period": 0.2,
                  **{k: v for extra in cam.parameters for k, v in extra.items()}}
        args = ["--ros-args", *[a for src, dst in cam.remappings for a in ("-r", f"{src}:={dst}")]]
        nodes.append(MaskingNode(context=ros_context, namespace=cam.namespace, cli_args=args,
                                 parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]))
    probe = Node("probe", context=ros_context)
    cams = [probe.create_publisher(Image, c.topic, qos.profile("sensor_data", 1)) for c in cameras]
    got: list[list[Image]] = [[], []]
    for i, cam in enumerate(cameras):
        probe.create_subscription(Image, f"{cam.node}/masked_image", got[i].append, qos.profile("reliable", 10))
    probe.create_publisher(String, "/robot/instruction", qos.latched()).publish(String(data="pick up the block"))
    spinner = Spinner(ros_context, probe, *nodes)
    try:
        assert [n.get_fully_qualified_name() for n in nodes] == ["/robot/cam_front/masking_node",
                                                                 "/robot/wrist/masking_node"]
        assert wait_for(lambda: all(n.stats()["instruction"] == "pick up the block" for n in nodes), 10)
        frame = np.full((40, 60, 3), 200, np.uint8)

        def send() -> bool:
            for pub in cams:
                pub.publish(array_to_image(frame, "rgb8"))
            return all(got)

        assert wait_for(send, 10, period=0.1), [len(g) for g in got]
        front, wrist = (image_to_array(g[-1])[0] for g in got)
        assert (front[0, 0] == 255).all() and (front[20, 30] == 200).all()  # centre kept, border white
        assert (wrist == 200).all()  # keep_all: passed through
    finally:
        spinner.close()
        for n in nodes:
            n.on_shutdown(None)
            n.destroy_node()
        probe.destroy_node()
