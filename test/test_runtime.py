"""ROS-free runtime pieces: latency windows, the latest-frame mailbox, malloc tuning."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ivm_ros.runtime import LatencyWindow, LatestMailbox, tune_malloc


@pytest.mark.parametrize("n", [1, 2, 5, 300, 1000])
def test_latency_window_percentiles_match_numpy(n):
    values = np.random.default_rng(n).random(n) * 10
    window = LatencyWindow(size=300)
    for v in values:
        window.add(float(v))
    for q in (0, 5, 50, 95, 99.9, 100):
        assert window.percentile(q) == pytest.approx(np.percentile(values[-300:], q), abs=1e-12)


def test_latency_window_empty_is_nan():
    assert np.isnan(LatencyWindow().percentile(50))


def test_mailbox_keeps_the_newest_and_returns_the_displaced():
    box: LatestMailbox[int] = LatestMailbox()
    assert box.put(1) is None
    assert box.put(2) == 1
    assert box.get(timeout=0.1) == 2
    assert box.get(timeout=0.01) is None
    got = []
    waiter = threading.Thread(target=lambda: got.append(box.get(timeout=5)))
    waiter.start()
    box.close()
    waiter.join(2)
    assert got == [None]


def test_tune_malloc_respects_the_users_choice(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")
    assert tune_malloc() is False
