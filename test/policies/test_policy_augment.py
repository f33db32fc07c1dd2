"""Scene augmentations of the embedded policy's training (photometric jitter, table retexturing):
what changes, what must not, and that a sample's window shares its draw (fine-tuning: test_embedded_policy)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flax")

from ivm_ros.policies.embedded.data import WOOD_HSV, photometric, random_texture, retexture_surface, wood_surface
from ivm_ros.policies.embedded.train import PolicyTrainConfig

WOOD, RED, BLUE, PINK, WHITE = (140, 90, 50), (200, 20, 20), (20, 30, 200), (210, 40, 200), (235, 235, 235)


def _scene(n: int = 3, window: int = 2) -> np.ndarray:
    """(n, window, 24, 24, 3) uint8: wood table with a red, a blue and a pink block and a white gripper."""
    img = np.empty((24, 24, 3), np.uint8)
    img[:] = WOOD
    img[2:6, 2:6], img[2:6, 10:14], img[2:6, 18:22], img[14:22, 8:16] = RED, BLUE, PINK, WHITE
    return np.broadcast_to(img, (n, window, 24, 24, 3)).copy()


def test_wood_surface_is_the_table_and_not_the_blocks_or_the_robot():
    wood = wood_surface(_scene(1, 1))[0, 0]
    assert wood.shape == (24, 24)
    assert wood[10, 2] and wood[23, 23]
    assert not wood[2:6, 2:6].any() and not wood[2:6, 10:14].any() and not wood[2:6, 18:22].any()
    assert not wood[14:22, 8:16].any()
    assert WOOD_HSV[0][0] < WOOD_HSV[1][0]


def test_retexturing_changes_only_the_wood_and_a_window_shares_its_texture():
    frames = _scene(8)
    out = retexture_surface(frames, 1.0, np.random.default_rng(0))
    assert out.shape == frames.shape and out.dtype == np.uint8
    wood = wood_surface(frames)
    assert np.array_equal(out[~wood], frames[~wood])  # blocks and gripper untouched
    assert (out[wood] != frames[wood]).any(axis=-1).mean() > 0.5
    assert all(np.array_equal(out[i, 0], out[i, 1]) for i in range(8))  # one texture per sample window
    assert len({out[i, 0][wood[i, 0]].tobytes() for i in range(8)}) > 1  # samples differ
    assert retexture_surface(frames, 0.0, np.random.default_rng(0)) is frames
    some = retexture_surface(_scene(200), 0.3, np.random.default_rng(1))
    changed = np.mean([not np.array_equal(s, f) for s, f in zip(some, _scene(200))])
    assert 0.2 < changed < 0.4


def test_random_textures_have_the_asked_size_and_vary():
    rng = np.random.default_rng(0)
    texs = [random_texture(10, 14, rng) for _ in range(12)]
    assert all(t.shape == (10, 14, 3) and t.dtype == np.uint8 for t in texs)
    assert len({t.tobytes() for t in texs}) == 12
    assert any(len(np.unique(t.reshape(-1, 3), axis=0)) == 1 for t in texs)  # solid colours among them
    assert any(len(np.unique(t.reshape(-1, 3), axis=0)) > 1 for t in texs)


def test_photometric_jitter_changes_samples_alike_across_their_window_and_zero_is_identity():
    frames = _scene(6)
    out = photometric(frames, 0.8, np.random.default_rng(0))
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert all(np.array_equal(out[i, 0], out[i, 1]) for i in range(6))
    means = out.reshape(6, -1).mean(1)
    assert means.std() > 3 and np.abs(means - frames.mean()).max() < 0.4 * 255
    assert photometric(frames, 0.0, np.random.default_rng(0)) is frames
    with pytest.raises(ValueError, match="photometric"):
        PolicyTrainConfig(photometric=1.5).check()
    with pytest.raises(ValueError, match="retexture"):
        PolicyTrainConfig(retexture=-0.1).check()

