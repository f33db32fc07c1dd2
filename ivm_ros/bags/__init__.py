"""Recorded data: rosbag2 files (MCAP, sqlite3) masked offline through the masking pipeline (``ivm-ros mask-bag``).
Plain Python over the ``rosbags`` library: no ROS install needed."""


class BagError(Exception):
    """A bag, topic or output that cannot be used; the message is one line for the user."""
