"""Shared test helpers: doubles for what a test is not about (``predictors``, ``policies``; named for what they
are) and helpers for tests with real rclpy nodes (``ros``). ``TEST_ROOT`` is the folder a node process started
by a test needs on its PYTHONPATH to load the doubles by ``"support.<module>:<Class>"``."""

from pathlib import Path

TEST_ROOT = Path(__file__).resolve().parents[1]
