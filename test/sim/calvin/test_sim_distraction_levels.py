"""Workspace distraction levels: deterministic per seed, the old levels unchanged, look-alikes of the stated kinds next
to the named block, nothing in the keep-out zones, camera jitter bounded, every level accepted by the commands."""

import argparse

import numpy as np
import pybullet as p
import pytest
from ivm_ros_sim.calvin import distractors as dist
from ivm_ros_sim.calvin import workspace_distractors as W
from ivm_ros_sim.calvin.chains import load_chains, reset_to_chain
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.scene import CalvinScene

NEW = ("clutter", "lookalike", "fixture_lookalike", "appearance", "texture", "lighting", "camera_jitter", "paper-large",
       "paper-xlarge")


@pytest.fixture(scope="module")
def env():
    e = CalvinSceneEnv(static_size=64, gripper_size=32, render_gripper=False)
    yield e
    e.close()


def _poses(env: CalvinSceneEnv) -> np.ndarray:
    return np.array([np.concatenate(p.getBasePositionAndOrientation(b, physicsClientId=env.client))
                     for b in env.distractor_bodies])


@pytest.mark.parametrize("level", NEW)
def test_same_seed_same_scene(env, level):
    runs = []
    for seed in (4, 4, 5):
        obs, _ = env.reset(seed=seed, task="push_red_block_left", distraction=level)
        runs.append((_poses(env), obs["rgb_static"], env.scene.cameras["static"]))
    (a, img_a, cam_a), (b, img_b, cam_b), (c, img_c, _) = runs
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(img_a, img_b)
    assert cam_a == cam_b
    assert not np.array_equal(img_a, img_c)  # another seed, another scene


def test_chain_distractors_deterministic(env):
    chain = load_chains(1, start=3)[0]
    runs = []
    for _ in range(2):
        reset_to_chain(env, chain, "paper-large", seed=2)
        env.begin_subtask(chain.subtasks[0])
        runs.append(_poses(env))
    np.testing.assert_array_equal(*runs)


#: (bodies, sum of their positions (m), light direction, ambient, the generator's next draw) of the old levels for
#: chain 0's start, taken with the code before the workspace levels existed.
OLD = {
    ("none", 0): (0, [0.0, 0.0, 0.0], [-50.0, 30.0, 100.0], 0.6, 0.6369616873214543),
    ("small", 0): (3, [0.224017, -0.588318, 1.164586], [-50.0, 30.0, 100.0], 0.6, 0.06527041641129139),
    ("small", 7): (3, [0.095414, -0.133617, 1.641259], [-50.0, 30.0, 100.0], 0.6, 0.5141176465995139),
    ("medium", 0): (6, [0.288013, -1.448079, 2.172535], [0.547847, -0.920853, 1.081947], 0.603318, 0.3222867247398318),
    ("large", 0): (10, [1.363556, -2.982739, 2.710521], [-0.920853, -1.836106, 1.033055], 0.664748,
                   0.43922893185830647),
    ("large", 7): (10, [0.77547, -3.494678, 2.731063], [1.588855, 1.102743, 1.450414], 0.710614, 0.7994915982844587),
}


def _apply_at_chain_start(scene: CalvinScene, base: int, level: str, seed: int, n: int,
                          pos_sum: list[float]) -> tuple[list[int], np.random.Generator]:
    """Applies ``level`` with ``seed`` at chain 0's start (from saved state ``base``) and checks the fingerprint: ``n``
    bodies whose positions sum to ``pos_sum``. Returns the bodies and the generator, drawn from as the level does."""
    p.restoreState(base, physicsClientId=scene.client)
    scene.set_state(load_chains(1)[0].scene_obs)
    rng = np.random.default_rng(seed)
    bodies = dist.apply(scene, level, rng)
    pos = [p.getBasePositionAndOrientation(b, physicsClientId=scene.client)[0] for b in bodies]
    assert len(bodies) == n, level
    np.testing.assert_allclose(np.sum(pos, axis=0) if pos else np.zeros(3), pos_sum, atol=1e-5)
    return bodies, rng


def test_old_levels_unchanged():
    scene = CalvinScene(64, 32)
    base, camera = p.saveState(physicsClientId=scene.client), scene.cameras["static"]
    try:
        for b in dist.apply(scene, "paper-large", np.random.default_rng(1)):  # a workspace level first: nothing
            p.removeBody(b, physicsClientId=scene.client)  # of it may linger
        for (level, seed), (n, pos_sum, light, ambient, next_draw) in OLD.items():
            bodies, rng = _apply_at_chain_start(scene, base, level, seed, n, pos_sum)
            np.testing.assert_allclose(scene.render_settings.light_direction, light, atol=1e-5)
            assert scene.render_settings.ambient == pytest.approx(ambient, abs=1e-5)
            assert rng.random() == next_draw  # the generator was drawn from exactly as before
            assert scene.cameras["static"] == camera and W.state(scene) is None
            for b in bodies:
                p.removeBody(b, physicsClientId=scene.client)
    finally:
        scene.close()


#: The same fingerprints for workspace levels whose CALVIN results are kept in results/calvin (chain 0's start, no
#: task), taken with the code of commit c2ca92c, before paper-xlarge's block copies were added.
WORKSPACE_OLD = {
    ("clutter", 0): (6, [0.243724, -0.748294, 2.857966], 0.2883307570075776),
    ("paper-large", 0): (17, [0.869328, -1.701815, 8.056591], 0.46982387427320615),
    ("paper-large", 7): (14, [-0.213027, -1.787677, 6.392973], 0.8596167058351629),
}


def test_workspace_levels_unchanged():
    scene = CalvinScene(64, 32)
    base = p.saveState(physicsClientId=scene.client)
    try:
        for (level, seed), (n, pos_sum, next_draw) in WORKSPACE_OLD.items():
            bodies, rng = _apply_at_chain_start(scene, base, level, seed, n, pos_sum)
            assert rng.random() == next_draw
            for b in bodies:
                p.removeBody(b, physicsClientId=scene.client)
    finally:
        scene.close()


def test_paper_xlarge_copies_every_block(env):
    chain = load_chains(1, start=5)[0]
    for seed in range(3):
        reset_to_chain(env, chain, "paper-xlarge", seed=seed)
        env.begin_subtask(chain.subtasks[0])
        ws = W.state(env.scene)
        copies = set()
        for body in ws.clutter:
            vis = p.getVisualShapeData(body, physicsClientId=env.client)[0]
            for block in env.scene.blocks:
                same_size = vis[2] == p.GEOM_BOX and np.allclose(vis[3], env.scene.block_size[block], atol=1e-6)
                if same_size and tuple(vis[7]) == pytest.approx(W.block_colour(env.scene, block)):
                    copies.add(block)
        assert copies == set(env.scene.blocks), seed  # one exact copy of each block, besides the look-alikes
        assert len(ws.clutter) == 3 + dist.LEVELS["paper-xlarge"].clutter
    # the table top holds only so much outside the keep-out: the rest waits on the floor, more of it than paper-large's
    on_table = {}
    for level in ("paper-large", "paper-xlarge"):
        env.reset(seed=3, task="lift_red_block_table", distraction=level)
        zs = [p.getBasePositionAndOrientation(b, physicsClientId=env.client)[0][2] for b in W.state(env.scene).clutter]
        on_table[level] = sum(z > 0.4 for z in zs)
    assert on_table["paper-xlarge"] > on_table["paper-large"], on_table


def _check_lookalikes(env: CalvinSceneEnv, target: str) -> None:
    ws = W.state(env.scene)
    assert ws.target == target and ws.kinds == list(W.LOOKALIKE_KINDS) and len(ws.lookalikes) == 3
    colour = W.block_colour(env.scene, target)
    size = env.scene.block_size[target]
    centre = env.scene.block_pose(target)[0]
    dists = []
    for body, kind in zip(ws.lookalikes, ws.kinds):
        vis = p.getVisualShapeData(body, physicsClientId=env.client)[0]
        geom, dims, rgba = vis[2], np.array(vis[3]), tuple(vis[7])
        if kind == "other_shape":
            assert geom == p.GEOM_CYLINDER and rgba == pytest.approx(colour)
        else:
            assert geom == p.GEOM_BOX
            np.testing.assert_allclose(dims, size, atol=1e-6)  # PyBullet reports a box's full extents
            assert (rgba == pytest.approx(colour)) == (kind == "same")
        pos = np.array(p.getBasePositionAndOrientation(body, physicsClientId=env.client)[0])
        assert pos[2] > 0.4, f"{kind} look-alike is not on the table"
        dists.append(np.linalg.norm(pos[:2] - centre[:2]))
    # each takes the free spot nearest the block (the table strip is 12-17 cm deep and holds three blocks, so later
    # ones may have to go further)
    assert min(dists) < 0.25 and max(dists) < 0.6, dists


@pytest.mark.parametrize("task, target", [("lift_red_block_table", "block_red"),
                                          ("rotate_blue_block_right", "block_blue"),
                                          ("push_pink_block_left", "block_pink")])
def test_lookalikes_next_to_the_named_block(env, task, target):
    for seed in range(3):
        env.reset(seed=seed, task=task, distraction="lookalike")
        _check_lookalikes(env, target)


def test_lookalikes_follow_the_chain_subtasks(env):
    chain = load_chains(1)[0]
    reset_to_chain(env, chain, "lookalike", seed=0)
    for task, target in (("lift_blue_block_table", "block_blue"), ("open_drawer", "block_blue"),
                         ("rotate_red_block_left", "block_red")):
        env.begin_subtask(task)
        _check_lookalikes(env, target)
        assert set(W.state(env.scene).lookalikes) <= set(env.distractor_bodies)
    assert len(env.distractor_bodies) == 3  # replaced look-alikes were removed


def _workspace_bodies(env: CalvinSceneEnv) -> list[int]:
    ws = W.state(env.scene)
    return ws.others + ws.lookalikes


@pytest.mark.parametrize("level", ["clutter", "lookalike", "fixture_lookalike", "paper-large", "paper-xlarge"])
def test_nothing_in_the_keep_out(env, level):
    for seed, task in enumerate(("push_red_block_right", "push_into_drawer", "open_drawer", "turn_on_led",
                                 "push_blue_block_left", "turn_on_lightbulb")):
        env.reset(seed=seed, task=task, distraction=level)
        boxes = W.task_keep_out(env.scene, task)
        bodies = _workspace_bodies(env)
        assert bodies
        for b in bodies:
            assert not W.overlaps(b, boxes, env.client), (level, task, b)
        placed = [b for b in bodies if p.getBasePositionAndOrientation(b, physicsClientId=env.client)[0][2] > 0.4]
        assert len(placed) >= len(bodies) // 2  # most of them are on the table, few parked on the floor
    for chain in load_chains(3, start=10):
        reset_to_chain(env, chain, level, seed=0)
        for task in chain.subtasks:
            env.begin_subtask(task)
            boxes = W.task_keep_out(env.scene, task)
            assert not any(W.overlaps(b, boxes, env.client) for b in _workspace_bodies(env)), (level, task)


def test_keep_out_covers_the_push_path(env):
    env.reset(seed=0, task="push_red_block_right", distraction="none")
    pos = env.scene.block_pose("block_red")[0]
    boxes = W.task_keep_out(env.scene, "push_red_block_right")
    ahead = pos + [0.18, 0.0, 0.0]
    assert any((lo <= ahead).all() and (ahead <= hi).all() for lo, hi in boxes)
    assert not any((lo <= ahead).all() and (ahead <= hi).all() for lo, hi in W.task_keep_out(env.scene))


def test_camera_jitter_bounded(env):
    env.reset(seed=0, task="open_drawer", distraction="none")
    base = env.scene.cameras["static"]
    moved = []
    for seed in range(8):
        env.reset(seed=seed, task="open_drawer", distraction="appearance")
        cam = env.scene.cameras["static"]
        d_from = np.abs(np.subtract(cam.look_from, base.look_from))
        d_at = np.abs(np.subtract(cam.look_at, base.look_at))
        assert (d_from <= W.JITTER_FROM).all() and (d_at <= W.JITTER_AT).all()
        assert (cam.fov, cam.up, cam.width) == (base.fov, base.up, base.width)
        moved.append(d_from.max() + d_at.max())
    assert min(moved) > 0.0
    env.reset(seed=0, task="open_drawer", distraction="large")
    assert env.scene.cameras["static"] == base  # other levels put the camera back


@pytest.mark.parametrize("level", ["texture", "lighting", "camera_jitter"])
def test_appearance_parts_change_one_thing_each(env, level):
    spec, whole = dist.LEVELS[level], dist.LEVELS["appearance"]
    flags = {"texture": spec.texture, "lighting": spec.lighting, "camera_jitter": spec.camera_jitter}
    assert flags == {k: k == level for k in flags} and not spec.n_objects and not spec.clutter
    assert not spec.adds_objects and dist.LEVELS["paper-large"].adds_objects and dist.LEVELS["small"].adds_objects
    assert getattr(whole, level)  # a part of appearance
    obs, _ = env.reset(seed=2, task="open_drawer", distraction="none")
    cam, light, img = env.scene.cameras["static"], env.scene.render_settings, obs["rgb_static"].copy()
    obs, _ = env.reset(seed=2, task="open_drawer", distraction=level)
    changed = {"texture": bool(getattr(env.scene, "textured", False)),
               "lighting": env.scene.render_settings != light,
               "camera_jitter": env.scene.cameras["static"] != cam}
    assert changed == {k: k == level for k in changed}
    assert not env.distractor_bodies and not np.array_equal(obs["rgb_static"], img)


def test_every_level_accepted_by_the_commands():
    from ivm_ros_sim.data import chain_demos, engine
    from ivm_ros_sim.eval import calvin_eval

    ap = argparse.ArgumentParser()
    chain_demos.add_parser(ap.add_subparsers(dest="cmd"))
    for level in dist.LEVELS:
        assert calvin_eval.parser().parse_args(["--distraction", level]).distraction == level
        assert ap.parse_args(["chains", "--distraction", level]).distraction == level
        engine._check_ivm_args((level,), 0.5, 0.5, "independent")
    assert set(NEW) <= set(dist.LEVELS) and list(dist.LEVELS)[:4] == list(dist.OUTSIDE_LEVELS)
    with pytest.raises(SystemExit):
        calvin_eval.parser().parse_args(["--distraction", "huge"])
    with pytest.raises(ValueError, match="valid"):
        engine._check_ivm_args(("huge",), 0.5, 0.5, "independent")


def test_distraction_cameras_static_keeps_the_gripper_view_plain():
    both = CalvinSceneEnv(static_size=64, gripper_size=32)
    plain = CalvinSceneEnv(static_size=64, gripper_size=32, distraction_cameras="static")
    try:
        clean = both.reset(seed=6, task="lift_red_block_table", distraction="none")[0]
        for env in (both, plain):
            env.reset(seed=6, task="lift_red_block_table", distraction="none")
        shown = both.reset(seed=6, task="lift_red_block_table", distraction="appearance")[0]
        diag = plain.reset(seed=6, task="lift_red_block_table", distraction="appearance")[0]
        assert not np.array_equal(shown["rgb_gripper"], clean["rgb_gripper"])
        np.testing.assert_array_equal(diag["rgb_gripper"], clean["rgb_gripper"])  # texture and light undone there
        np.testing.assert_array_equal(diag["rgb_static"], shown["rgb_static"])  # the static camera sees the level
        np.testing.assert_array_equal(plain.observe()["rgb_static"], shown["rgb_static"])  # and it was put back
    finally:
        both.close()
        plain.close()
    with pytest.raises(ValueError, match="distraction_cameras"):
        CalvinSceneEnv(static_size=32, gripper_size=16, distraction_cameras="gripper")


def test_distraction_cameras_static_all_hides_the_levels_objects_from_the_gripper_view_only():
    both = CalvinSceneEnv(static_size=64, gripper_size=32)
    diag = CalvinSceneEnv(static_size=64, gripper_size=32, distraction_cameras="static-all")
    try:
        clean = both.reset(seed=6, task="lift_red_block_table", distraction="none")[0]
        shown = both.reset(seed=6, task="lift_red_block_table", distraction="paper-large")[0]
        seen = diag.reset(seed=6, task="lift_red_block_table", distraction="paper-large")[0]
        assert diag.distractor_bodies
        assert not np.array_equal(shown["rgb_gripper"], clean["rgb_gripper"])
        np.testing.assert_array_equal(seen["rgb_gripper"], clean["rgb_gripper"])  # no objects, texture or light
        np.testing.assert_array_equal(seen["rgb_static"], shown["rgb_static"])  # the static camera sees them all
        np.testing.assert_array_equal(seen["scene_obs"], shown["scene_obs"])  # visual only: the world is the same
        np.testing.assert_array_equal(diag.scene.render("gripper")[0], shown["rgb_gripper"])  # colours put back
        act = np.array([0.5, 0.0, -0.5, 0.0, 0.0, 0.0, 1.0])
        for _ in range(5):  # stepping is unchanged by the hiding
            a, b = both.step(act)[0], diag.step(act)[0]
        np.testing.assert_array_equal(a["robot_obs"], b["robot_obs"])
        np.testing.assert_array_equal(a["rgb_static"], b["rgb_static"])
    finally:
        both.close()
        diag.close()


def test_distraction_cameras_none_leaves_only_the_levels_physics():
    both = CalvinSceneEnv(static_size=64, gripper_size=32, segmentation=True)
    diag = CalvinSceneEnv(static_size=64, gripper_size=32, segmentation=True, distraction_cameras="none")
    try:
        clean = both.reset(seed=6, task="lift_red_block_table", distraction="none")[0]
        shown = both.reset(seed=6, task="lift_red_block_table", distraction="paper-large")[0]
        seen = diag.reset(seed=6, task="lift_red_block_table", distraction="paper-large")[0]
        assert not np.array_equal(shown["rgb_static"], clean["rgb_static"])
        for key in ("rgb_static", "rgb_gripper", "seg_static"):  # no object, texture, light or camera jitter
            np.testing.assert_array_equal(seen[key], clean[key])
        np.testing.assert_array_equal(seen["scene_obs"], shown["scene_obs"])
        np.testing.assert_array_equal(diag.scene.render("static")[0], shown["rgb_static"])  # jitter put back
    finally:
        both.close()
        diag.close()


def test_hidden_bodies_gives_each_shape_of_a_link_its_own_colour_back(tmp_path):
    import types

    urdf = tmp_path / "two.urdf"  # one link, two visual shapes of different colours
    urdf.write_text('<robot name="two"><link name="base"><inertial><mass value="0"/><inertia ixx="0" ixy="0" ixz="0" '
                    'iyy="0" iyz="0" izz="0"/></inertial>' + "".join(
                        f'<visual><origin xyz="{x} 0 0"/><geometry><box size="0.04 0.04 0.04"/></geometry>'
                        f'<material name="m{i}"><color rgba="{rgba}"/></material></visual>'
                        for i, (x, rgba) in enumerate([(-0.03, "1 0 0 1"), (0.03, "0 0 1 1")])) + "</link></robot>")
    c = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(str(urdf), physicsClientId=c)
        view = p.computeViewMatrix([0, -0.3, 0.1], [0, 0, 0], [0, 0, 1])
        proj = p.computeProjectionMatrixFOV(40, 1, 0.01, 2)

        def render() -> np.ndarray:
            return np.asarray(p.getCameraImage(64, 64, view, proj, renderer=p.ER_TINY_RENDERER,
                                               physicsClientId=c)[2]).reshape(64, 64, 4)[:, :, :3]

        def boxes(img: np.ndarray) -> tuple[int, int]:  # red and blue pixels
            r, g, b = (img[:, :, k].astype(int) for k in range(3))
            return int(((r > 100) & (g < 60) & (b < 60)).sum()), int(((b > 100) & (r < 60) & (g < 60)).sum())

        before = render()
        assert min(boxes(before)) > 50
        with dist.hidden_bodies(types.SimpleNamespace(client=c), [body]):
            assert boxes(render()) == (0, 0)
        np.testing.assert_array_equal(render(), before)  # red stays red, blue stays blue
    finally:
        p.disconnect(c)
