"""The rates and time windows masking_node reports on /diagnostics (no ROS)."""

from __future__ import annotations

from typing import Any

from ivm_ros.runtime import LatencyWindow, RateMeter


class MaskingMeters:
    """Rates (Hz) in and out, and windows of milliseconds: latency (arrival -> published), predictor, mailbox
    wait, worker time per frame, time in publish(), and the frame's stamp age (node clock - header stamp) at
    arrival and when the masked image goes to publish(): meaningful when the camera stamps with this machine's
    clock or with sim time; stamps of 0 are skipped."""

    def __init__(self) -> None:
        self.rate_in, self.rate_out = RateMeter(), RateMeter()
        self.latency, self.predictor_ms = LatencyWindow(), LatencyWindow()
        self.wait_ms, self.work_ms, self.publish_ms = LatencyWindow(), LatencyWindow(), LatencyWindow()
        self.input_age_ms, self.output_age_ms = LatencyWindow(), LatencyWindow()

    def add_ages(self, stamp_ns: int, arrived_ns: int, now_ns: int) -> None:
        """A frame's stamp age at arrival and now (at publish), all three on the node's clock, in ns."""
        self.input_age_ms.add((arrived_ns - stamp_ns) / 1e6)
        self.output_age_ms.add((now_ns - stamp_ns) / 1e6)

    def values(self) -> dict[str, Any]:
        """The diagnostics values (rates in Hz, percentiles in ms; NaN before any sample)."""
        return {
            "input_rate_hz": self.rate_in.rate(),
            "output_rate_hz": self.rate_out.rate(),
            "latency_p50_ms": self.latency.percentile(50),
            "latency_p95_ms": self.latency.percentile(95),
            "predictor_p50_ms": self.predictor_ms.percentile(50),
            "mailbox_wait_p50_ms": self.wait_ms.percentile(50),
            "worker_p50_ms": self.work_ms.percentile(50),
            "publish_p50_ms": self.publish_ms.percentile(50),
            "input_age_p50_ms": self.input_age_ms.percentile(50),
            "input_age_p95_ms": self.input_age_ms.percentile(95),
            "output_age_p50_ms": self.output_age_ms.percentile(50),
            "output_age_p95_ms": self.output_age_ms.percentile(95),
        }
