"""The simulator demo (part of the README's main job) runs sim_node -> masking_node and saves its picture."""

from __future__ import annotations

import cv2
from ivm_ros_sim import demo


def test_sim_demo_writes_one_row_per_episode(tmp_path):
    rc = demo.main(["--model", "color_keyword", "--tasks", "lift_red_block_table", "--levels", "none,large",
                    "--out", str(tmp_path)])
    assert rc == 0
    img = cv2.imread(str(tmp_path / "sim_lite.png"))
    # two rows of (30-px caption + 2 x 200-px frames), three 2 x 200-px panels wide
    assert img.shape == (2 * (30 + 400), 3 * 400, 3)
