"""A live view of the masking without RViz: a self-hosted web page (:mod:`.web`) or a Foxglove WebSocket server
(:mod:`.foxglove_view`), both fed the newest camera / mask / masked frames, the instruction and the diagnostics
through the same small interface (:class:`.state.ViewSink`). No ROS here: ``ivm_ros/ros/viewer_node.py`` wires
the topics to a sink."""

from ivm_ros.live_view.state import STREAMS, LiveState, RateGate, ViewSink

__all__ = ["STREAMS", "LiveState", "RateGate", "ViewSink"]
