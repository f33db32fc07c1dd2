"""Helpers for tests with real rclpy nodes: an executor spinning in a thread, and waiting on conditions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Float64, Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger

from ivm_ros.ros import qos
from ivm_ros.ros.conversions import array_to_image


class Spinner:
    """Spins the given nodes on a SingleThreadedExecutor in a background thread until closed."""

    def __init__(self, context: rclpy.Context, *nodes: Node) -> None:
        self.executor = SingleThreadedExecutor(context=context)
        for node in nodes:
            self.executor.add_node(node)
        self._stop = False
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def add(self, node: Node) -> None:
        self.executor.add_node(node)

    def _spin(self) -> None:
        while not self._stop and self.executor.context.ok():
            self.executor.spin_once(timeout_sec=0.02)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=5)
        self.executor.shutdown()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, period: float = 0.01) -> bool:
    """Polls ``condition`` until true or ``timeout`` seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(period)
    return bool(condition())


def clock_matches_a_frame(got: dict) -> bool:
    """True when a received ``/clock`` carries the stamp of a received image (``got``: key -> messages). A
    node publishes /clock first each tick, but the /clock subscription may match after the image's."""
    clocks = {(c.clock.sec, c.clock.nanosec) for c in list(got["clock"])}
    return any((f.header.stamp.sec, f.header.stamp.nanosec) in clocks for f in list(got["image"]))


class Probe(Node):
    """A test-side node: publishes frames and instructions, records what comes back."""

    def __init__(self, context: rclpy.Context, prefix: str = "/masking_node", image_qos: QoSProfile | None = None):
        super().__init__("probe", context=context)
        self.image_pub = self.create_publisher(Image, "image_raw", image_qos or qos.profile("sensor_data", 1))
        from std_msgs.msg import String

        self.instruction_pub = self.create_publisher(String, "instruction", qos.latched())
        self.received: dict[str, list] = {"masked_image": [], "mask": [], "overlay": []}
        self.diagnostics: list = []
        self._subs = {}
        self.prefix = prefix

    def listen(self, *names: str, depth: int = 100) -> None:
        for name in names:
            self._subs[name] = self.create_subscription(
                Image,
                f"{self.prefix}/{name}",
                lambda m, n=name: self.received[n].append(m),
                qos.profile("reliable", depth),
            )

    def listen_diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self._subs["diag"] = self.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)

    def instruct(self, text: str) -> None:
        from std_msgs.msg import String

        self.instruction_pub.publish(String(data=text))

    def send(self, array: np.ndarray, encoding: str = "rgb8", stamp_ns: int = 0, frame_id: str = "camera") -> Image:
        msg = array_to_image(array, encoding)
        msg.header.frame_id = frame_id
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        self.image_pub.publish(msg)
        return msg


class PublishSpy:
    """Stands in for a node's publisher: records each ``publish`` call (``calls``, and ``name`` in a shared
    ``order`` list) and forwards it; everything else (``get_subscription_count`` ...) goes to the publisher."""

    def __init__(self, publisher, name: str = "", order: list[str] | None = None) -> None:
        self._publisher, self.name = publisher, name
        self.order = order if order is not None else []
        self.calls = 0

    def publish(self, msg) -> None:
        self.calls += 1
        self.order.append(self.name)
        self._publisher.publish(msg)

    def __getattr__(self, attr: str):
        return getattr(self._publisher, attr)


def stop_node_process(proc) -> str:
    """Stops a node started with ``subprocess.Popen(..., stdout=PIPE, stderr=STDOUT, text=True)`` the way Ctrl-C
    under ``ros2 launch`` does, by two SIGINTs (the terminal's, then launch's) (kill after 20 s); asserts it
    exited with 0 and without a traceback, and returns its output."""
    import signal
    import subprocess
    import time

    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)  # the second one lands while the node shuts down
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    return output


class PolicyProbe(Node):
    """Publishes frames and instructions to a policy node; records its three command outputs."""

    def __init__(self, context: rclpy.Context, prefix: str = "/policy_node", image_topic: str = "image",
                 instruction_topic: str = "instruction", image_qos: str = "sensor_data") -> None:
        super().__init__("policy_probe", context=context)
        self.image_pub = self.create_publisher(Image, image_topic, qos.profile(image_qos, 10))
        self.instruction_pub = self.create_publisher(String, instruction_topic, qos.latched())
        self.actions: list[tuple[float, Float64MultiArray]] = []
        self.twists: list[TwistStamped] = []
        self.grippers: list[float] = []
        out = qos.profile("reliable", 1000)
        self.create_subscription(Float64MultiArray, f"{prefix}/action",
                                 lambda m: self.actions.append((time.monotonic(), m)), out)
        self.create_subscription(TwistStamped, f"{prefix}/delta_twist_cmds", self.twists.append, out)
        self.create_subscription(Float64, f"{prefix}/gripper_cmd", lambda m: self.grippers.append(m.data), out)
        self.enable_client = self.create_client(SetBool, f"{prefix}/enable")
        self.reset_client = self.create_client(Trigger, f"{prefix}/reset")

    def instruct(self, text: str) -> None:
        self.instruction_pub.publish(String(data=text))

    def send(self, value: int, stamp_s: float = 0.0, size: int = 32, encoding: str = "rgb8") -> Image:
        msg = array_to_image(np.full((size, size, 3), value, np.uint8), encoding)
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), int(round((stamp_s % 1) * 1e9))
        self.image_pub.publish(msg)
        return msg

    def call(self, client, request, timeout: float = 5.0):
        assert client.wait_for_service(timeout_sec=timeout)
        future = client.call_async(request)
        assert wait_for(future.done, timeout)
        return future.result()

    def enable(self, on: bool = True) -> None:
        assert self.call(self.enable_client, SetBool.Request(data=on)).success

    def values(self) -> list[list[float]]:
        return [list(m.data) for _, m in self.actions]


class AnswersFromTryClientForTest:
    """A service client double whose first ``lost`` requests are never answered (a lost response), then answered."""

    def __init__(self, lost: int, srv_name: str = "sim_node/set_parameters", answer=None) -> None:
        self.lost, self.srv_name, self.answer, self.sent, self.removed = lost, srv_name, answer, 0, 0

    def call_async(self, request):
        from rclpy.task import Future

        self.sent += 1
        future = Future()
        if self.sent > self.lost:
            future.set_result(("answer", request) if self.answer is None else self.answer)
        return future

    def remove_pending_request(self, future) -> None:
        self.removed += 1
