"""Our Bridge distractors' choice and placement (pure functions, no SAPIEN) and the env-id routing."""

from __future__ import annotations

import numpy as np
import pytest
from ivm_ros_sim.simpler import distractors as D

BRIDGE = tuple(D.SLOTS)


def _episodes(task: str) -> list[np.ndarray]:
    return D.release_xy_configs(task)


def test_release_grids_match_simpler_env():
    assert len(_episodes("widowx_carrot_on_plate")) == 12 and len(_episodes("widowx_spoon_on_towel")) == 12
    assert len(_episodes("widowx_stack_cube")) == 24
    first = _episodes("widowx_carrot_on_plate")[0]
    np.testing.assert_allclose(first, [[-0.235, -0.075], [-0.235, 0.075]])  # carrot, plate at episode 0 (real env)
    with pytest.raises(ValueError, match="no distractors"):
        D.release_xy_configs("widowx_put_eggplant_in_basket")


@pytest.mark.parametrize("task", BRIDGE)
def test_models_are_deterministic_nested_distinct_and_from_their_slots(task):
    for seed in range(20):
        four = D.choose_models(task, seed, 4)
        assert four == D.choose_models(task, seed, 4) and D.choose_models(task, seed, 2) == four[:2]
        assert len(set(four)) == 4 and all(m in pool for m, pool in zip(four, D.SLOTS[task]))
    assert len({tuple(D.choose_models(task, s, 4)) for s in range(20)}) > 1  # the seed varies them
    with pytest.raises(ValueError):
        D.choose_models(task, 0, 5)


def test_look_alikes_never_repeat_the_named_objects():
    named = {"widowx_carrot_on_plate": {"bridge_carrot_generated_modified", "bridge_plate_objaverse_larger"},
             "widowx_spoon_on_towel": {"bridge_spoon_generated_modified", "table_cloth_generated_shorter"},
             "widowx_stack_cube": {"baked_green_cube_3cm", "baked_yellow_cube_3cm", "green_cube_3cm",
                                   "yellow_cube_3cm"}}
    for task, objects in named.items():
        assert not objects & {m for pool in D.SLOTS[task] for m in pool}
    assert all(m in D.MODELS for pools in D.SLOTS.values() for pool in pools for m in pool)


def _check_rules(task: str, xy: np.ndarray, models: list[str], poses: np.ndarray) -> None:
    r_source, r_target = D.TASK_RADII[task]
    layout = D.LAYOUTS[D.TASKS[task].layout]
    radii = [D.MODELS[m].radius for m in models]
    tcp = np.asarray(layout.tcp_xy)
    for i, (p, r) in enumerate(zip(poses[:, :2], radii)):
        assert np.linalg.norm(p - xy[0]) >= r + r_source + D.CLEARANCE - 1e-9
        assert np.linalg.norm(p - xy[1]) >= r + r_target + D.CLEARANCE - 1e-9
        assert D.segment_distance(p, xy[0], xy[1]) >= r + r_source + D.CLEARANCE - 1e-9
        assert D.segment_distance(p, tcp, xy[0]) >= r + D.GRIPPER_HALF_WIDTH + D.CLEARANCE - 1e-9
        assert any(g.x0 + r <= p[0] <= g.x1 - r and g.y0 + r <= p[1] <= g.y1 - r for g in layout.regions)
        assert D.visible(layout, p, layout.regions[0].z)
        for j in range(i):
            assert np.linalg.norm(p - poses[j, :2]) >= r + radii[j] + D.GAP - 1e-9


@pytest.mark.parametrize("task", BRIDGE)
@pytest.mark.parametrize("level", D.LEVELS)
def test_every_release_episode_gets_its_count_clear_of_the_task(task, level):
    for xy in _episodes(task):
        for seed in range(3):
            models, poses = D.plan(task, seed, level, xy[0], xy[1])
            assert len(models) == level and poses.shape == (level, 3)
            _check_rules(task, xy, models, poses)


def test_placement_is_deterministic_per_seed_and_follows_the_episode():
    xy = _episodes("widowx_spoon_on_towel")[3]
    a, b = D.plan("widowx_spoon_on_towel", 7, 4, xy[0], xy[1]), D.plan("widowx_spoon_on_towel", 7, 4, xy[0], xy[1])
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    other = D.plan("widowx_spoon_on_towel", 8, 4, xy[0], xy[1])
    assert not np.allclose(a[1], other[1])
    nested = sum(np.array_equal(D.plan(t, s, 2, x[0], x[1])[1], D.plan(t, s, 4, x[0], x[1])[1][:2])
                 for t in BRIDGE for s in range(3) for x in _episodes(t)[:4])
    assert nested >= 0.5 * 3 * 3 * 4  # spots nested unless level 4 needed a restart


def test_segment_distance_and_blocking():
    a, b = np.array([0.0, 0.0]), np.array([1.0, 0.0])
    assert D.segment_distance(np.array([0.5, 0.2]), a, b) == pytest.approx(0.2)
    assert D.segment_distance(np.array([-0.3, 0.4]), a, b) == pytest.approx(0.5)
    assert D.segment_distance(np.array([0.3, 0.4]), a, a) == pytest.approx(0.5)
    source, target, tcp = np.array([-0.235, -0.075]), np.array([-0.235, 0.075]), np.array([-0.145, 0.034])
    assert D.blocks_task(np.array([-0.235, 0.0]), 0.03, source, target, 0.06, 0.055, tcp)  # on the path
    assert D.blocks_task(np.array([-0.19, -0.02]), 0.03, source, target, 0.06, 0.055, tcp)  # gripper's way down
    assert not D.blocks_task(np.array([-0.2, -0.3]), 0.03, source, target, 0.06, 0.055, tcp)


def test_visibility_uses_the_camera_and_the_photo_table():
    layout = D.LAYOUTS["bridge_table"]
    assert D.visible(layout, np.array([-0.2, 0.0]), 0.87)  # the table's middle
    assert not D.visible(layout, np.array([-0.3, 0.3]), 0.87)  # right of the image
    assert not D.visible(layout, np.array([-0.48, -0.3]), 0.87)  # behind the photo's table edge
    assert not D.visible(layout, np.array([0.5, 0.0]), 0.87)  # behind the camera's view


def test_routing_to_our_env_ids():
    assert D.route("widowx_carrot_on_plate", {"distractors": 2}) == (
        "IvmPutCarrotOnPlateDistractorsInScene-v0", {"distractors": 2})
    assert D.route("widowx_stack_cube", {"distractors": 0, "urdf_version": "x"}) == (None, {"urdf_version": "x"})
    assert D.route("google_robot_pick_coke_can", {}, stage_missing=True) == (
        "IvmGraspSingleOpenedCokeCanStandinInScene-v0", {"stage_standin": True})
    assert D.route("google_robot_pick_coke_can", {}, stage_missing=False) == (None, {})
    assert D.route("google_robot_pick_coke_can_distractors", {"stage_standin": False}, True) == (None, {})
    assert D.route("google_robot_pick_coke_can_distractors", {"distractor_config": "more"}, True)[1] == {
        "distractor_config": "more", "stage_standin": True}
    with pytest.raises(ValueError, match="sink"):
        D.route("widowx_put_eggplant_in_basket", {"distractors": 2})
    with pytest.raises(ValueError, match="only the Bridge tasks"):
        D.route("google_robot_pick_coke_can", {"distractors": 2})


def test_variants_name_the_levels_for_the_harness():
    assert D.VARIANTS == {f"distractors_{n}": {"distractors": n} for n in D.LEVELS}
    for kwargs in D.VARIANTS.values():
        assert D.route("widowx_spoon_on_towel", kwargs)[0] == D.TASKS["widowx_spoon_on_towel"].env_id


def test_module_imports_without_simpler_env_and_register_says_how_to_install():
    try:
        import mani_skill2_real2sim  # noqa: F401
    except ModuleNotFoundError:
        from ivm_ros_sim.simpler.env import SimplerEnvMissing

        with pytest.raises(SimplerEnvMissing, match="pip install"):
            D.register()
    else:
        pytest.skip("SimplerEnv is installed here")
