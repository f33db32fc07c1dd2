"""The simulator demo (part of the README's main job) runs sim_node -> masking_node and saves its picture."""

from __future__ import annotations

import cv2
import numpy as np
from ivm_ros_sim import demo

CAPTION, SIZE = 30, 200  # px: each row is a caption bar over (camera | mask tinted on the camera | masked), x2


def _panels(img: np.ndarray, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(camera, tinted, masked) of one row at the frames' own 200x200 (the picture is a nearest-neighbour x2)."""
    top = row * (CAPTION + 2 * SIZE) + CAPTION
    band = img[top:top + 2 * SIZE:2, ::2]
    return band[:, :SIZE], band[:, SIZE:2 * SIZE], band[:, 2 * SIZE:]


def test_sim_demo_writes_one_row_per_episode_showing_the_mask_applied(tmp_path):
    # color_keyword keeps the red pixels of "grasp and lift the red block": a small part of the scene
    rc = demo.main(["--model", "color_keyword", "--tasks", "lift_red_block_table", "--levels", "none,large",
                    "--out", str(tmp_path)])
    assert rc == 0
    img = cv2.cvtColor(cv2.imread(str(tmp_path / "sim_lite.png")), cv2.COLOR_BGR2RGB)
    # two rows of (30-px caption + 2 x 200-px frames), three 2 x 200-px panels wide
    assert img.shape == (2 * (CAPTION + 2 * SIZE), 3 * 2 * SIZE, 3)
    for row in range(2):
        camera, tinted, masked = _panels(img, row)
        kept = (tinted != camera).any(axis=2)  # the tint marks where the mask is above one half
        assert 0.001 < kept.mean() < 0.5, kept.mean()  # the red block, not nothing and not the whole scene
        c = camera.astype(int)
        red = (c[..., 0] > 150) & (c[..., 1] < 60) & (c[..., 2] < 60)
        assert red.any() and kept[red].all()  # every red pixel of the scene is kept
        # far from the kept region (beyond dilation 10 px + feathering 10 px) the mask is 0: the masked panel is the
        # white fill there, where the camera panel shows the scene
        far = cv2.dilate(kept.astype(np.uint8), np.ones((45, 45), np.uint8)) == 0
        assert far.mean() > 0.3
        assert (masked[far] == 255).all()
        assert np.abs(camera[far].astype(int) - 255).mean() > 30
        # inside the kept region, beyond the feathering's reach (10 px) from its edge, the masked panel is the
        # camera frame itself
        core = cv2.erode(kept.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
        assert core.any()
        assert np.abs(masked[core].astype(int) - camera[core].astype(int)).max() <= 2


def test_sim_demo_compares_lite_checkpoints_side_by_side(tmp_path, capsys):
    """--checkpoints: one masking node per shipped lite on the same camera and instruction; a mask panel each."""
    rc = demo.main(["--checkpoints", "lite_v2,lite_simpler_v1", "--tasks", "lift_red_block_table", "--levels",
                    "none", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "(lite lite_v2, lite lite_simpler_v1)" in out
    img = cv2.cvtColor(cv2.imread(str(tmp_path / "sim_lite.png")), cv2.COLOR_BGR2RGB)
    assert img.shape == (CAPTION + 2 * SIZE, 4 * 2 * SIZE, 3)  # camera | lite_v2 mask | lite_simpler_v1 mask | masked
    band = img[CAPTION::2, ::2]
    camera, v2, simpler = band[:, :SIZE], band[:, SIZE:2 * SIZE], band[:, 2 * SIZE:3 * SIZE]
    kept = [(tint != camera).any(axis=2).mean() for tint in (v2, simpler)]
    assert all(0.001 < k < 0.9 for k in kept), kept
    assert (v2 != simpler).any()  # two models, two masks of the same frame
