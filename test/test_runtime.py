"""ROS-free runtime pieces: latency windows, the latest-frame mailbox, malloc tuning."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ivm_ros.runtime import LatencyWindow, LatestMailbox, RateMeter, tune_malloc


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


def test_rate_meter_gives_exact_rates_for_known_tick_times():
    meter = RateMeter(window_s=5.0)
    assert meter.rate(now=0.0) == 0.0
    meter.tick(0.0)
    assert meter.rate(now=0.0) == 0.0  # one tick is no rate yet
    for k in range(1, 11):
        meter.tick(k * 0.1)
    # a window younger than half of window_s: intervals over the time they span (10 in 1 s)
    assert meter.rate(now=1.0) == pytest.approx(10.0, abs=1e-9)


def test_rate_meter_over_a_full_window_and_after_the_ticks_stop():
    meter = RateMeter(window_s=5.0)
    for k in range(80):  # 4 Hz from 0 to 19.75 s
        meter.tick(k * 0.25)
    # full window at 20.0 s (the next tick due): the 20 ticks of 15.0-19.75 s over 5 s
    assert meter.rate(now=20.0) == pytest.approx(4.0, abs=1e-9)
    assert meter.rate(now=22.0) == pytest.approx(12 / 5.0, abs=1e-9)  # stopped: 17.0-19.75 s left, decaying
    assert meter.rate(now=24.5) == pytest.approx(2 / 5.0, abs=1e-9)  # 19.5 and 19.75 s left
    assert meter.rate(now=24.8) == 0.0  # every tick older than the window


def test_seen_recently_takes_each_key_once_and_forgets_the_oldest():
    from ivm_ros.runtime import SeenRecently

    seen = SeenRecently(size=2)
    assert seen.first_time("a") and seen.first_time("b")
    assert not seen.first_time("a") and not seen.first_time("b")
    assert seen.first_time("c")  # forgets "a"
    assert seen.first_time("a") and not seen.first_time("c")
