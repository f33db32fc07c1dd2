"""sim_node's episode bookkeeping and sim time (ivm_ros_sim.ros.episodes), without ROS or PyBullet."""

from __future__ import annotations

from ivm_ros_sim.ros.episodes import RANDOM_TASK, Episode, Episodes, SeedSequence, stamp


class FakeEnv:
    """Records reset calls; fails for the task 'broken'."""

    def __init__(self) -> None:
        self.calls = []

    def reset(self, seed, task, distraction, options):
        self.calls.append((seed, task, distraction, options))
        if task == "broken":
            raise ValueError("no valid start state")
        return {"obs": seed}, {"task": task or "drawn_task", "instruction": f"do {task}"}


def test_seed_sequence_adds_the_increment_per_reset_until_seed_is_set():
    seeds = SeedSequence()
    assert seeds.seed(5, 3) == 5
    seeds.advance()
    seeds.advance()
    assert seeds.seed(5, 3) == 11 and seeds.seed(5, 0) == 5  # increment 0 replays
    seeds.restart()
    assert seeds.seed(7, 3) == 7


def test_episode_reports_and_truncates_at_max_steps():
    ep = Episode("open_drawer", 3, "none", "open the drawer")
    assert ep.started() == {"task": "open_drawer", "seed": 3, "distraction": "none", "instruction": "open the drawer"}
    ep.steps = 45
    assert not ep.over(0) and not ep.truncated  # 0: no limit
    assert not ep.over(46)
    assert ep.over(45) and ep.truncated
    report = ep.report()
    assert report["elapsed_s"] == 1.5 and report["truncated"] and report["steps"] == 45


def test_stamps_are_ticks_over_30_hz():
    assert stamp(0) == (0, 0)
    assert stamp(1) == (0, 33_333_333)
    assert stamp(2) == (0, 66_666_667)
    assert stamp(30) == (1, 0)
    assert stamp(31) == (1, 33_333_333)


def test_episodes_start_uses_the_seed_sequence_and_counts_resets():
    env, book = FakeEnv(), Episodes()
    obs, error = book.start(env, "open_drawer", 10, 2, "small", "train")
    assert obs == {"obs": 10} and error == ""
    assert env.calls[-1] == (10, "open_drawer", "small", {"instruction_split": "train"})
    assert book.current == Episode("open_drawer", 10, "small", "do open_drawer") and book.resets == 1
    obs, _ = book.start(env, RANDOM_TASK, 10, 2, "none", "eval", pool=["turn_on_led"])
    assert env.calls[-1][:2] == (12, "turn_on_led") and book.resets == 2  # drawn from the pool


def test_a_failed_reset_leaves_no_episode_and_keeps_the_seed():
    env, book = FakeEnv(), Episodes()
    book.start(env, "open_drawer", 0, 1, "none", "eval")
    obs, error = book.start(env, "broken", 0, 1, "none", "eval")
    assert obs is None and book.current is None and book.resets == 1
    assert error == "reset failed for task=broken seed=1 distraction=none: no valid start state"
    book.start(env, "open_drawer", 0, 1, "none", "eval")
    assert env.calls[-1][0] == 1  # the failed reset did not use up seed 1


def test_random_draws_from_the_pool_by_seed_and_the_default_pool_is_the_policys_tasks():
    import pytest
    from ivm_ros_sim.calvin import tasks
    from ivm_ros_sim.ros.episodes import POLICY_TASKS, RANDOM_TASK, draw_task
    from ivm_ros_sim.train.policy import TASKS

    assert set(POLICY_TASKS) == set(TASKS)  # what the shipped policies were trained on
    drawn = {draw_task(RANDOM_TASK, POLICY_TASKS, seed) for seed in range(200)}
    assert drawn == set(POLICY_TASKS)
    assert draw_task(RANDOM_TASK, POLICY_TASKS, 7) == draw_task(RANDOM_TASK, POLICY_TASKS, 7)
    assert len({draw_task(RANDOM_TASK, ["all"], seed) for seed in range(400)}) > 25
    assert set(draw_task(RANDOM_TASK, ["all"], s) for s in range(400)) <= set(tasks.all_tasks())
    assert draw_task("open_drawer", POLICY_TASKS, 3) == "open_drawer"
    with pytest.raises(ValueError, match="unknown"):
        draw_task(RANDOM_TASK, ["open_drawer", "fly_away"], 0)
    with pytest.raises(ValueError, match="empty pool"):
        draw_task(RANDOM_TASK, [], 0)


def test_chain_episodes_hold_until_resumed_and_stop_at_success():
    ep = Episode("turn_on_led", 0, "none", "press the button", chain=3, held=True)
    assert ep.stops(360)  # held
    ep.held = False
    assert not ep.stops(360)
    ep.success = True
    assert ep.stops(360)  # a chain subtask ends at its first success
    assert not Episode("turn_on_led", 0, "none", "x", success=True).stops(360)  # a task episode keeps stepping
    assert Episode("turn_on_led", 0, "none", "x", steps=360, chain=1).stops(360)
    episodes = Episodes()
    assert "needs a chain" in episodes.begin_subtask(None, "turn_on_led")
    assert not episodes.resume()


class BeginCountingEnvForTest:
    """Stands in for the env: counts begin_subtask calls (what the test is about is the episode bookkeeping)."""

    def __init__(self) -> None:
        self.begun: list[str] = []

    def begin_subtask(self, task: str) -> dict[str, str]:
        self.begun.append(task)
        return {"instruction": f"do {task}"}


def test_begin_and_resume_sent_again_change_nothing():
    """A lost answer makes the harness send begin_subtask / resume again: the repeat keeps the subtask's start
    (the env is not asked again) and a second resume publishes nothing; a new subtask still begins afresh."""
    env, episodes = BeginCountingEnvForTest(), Episodes()
    episodes.current = Episode("", 0, "none", "", chain=2, held=True)
    assert episodes.begin_subtask(env, "open_drawer") == "" and episodes.begin_subtask(env, "open_drawer") == ""
    assert env.begun == ["open_drawer"] and episodes.current.held
    resets = episodes.resets
    assert episodes.resume() == "resumed" and episodes.resets == resets + 1
    episodes.current.steps = 5
    assert episodes.resume() == "again" and episodes.resets == resets + 1 and episodes.current.steps == 5
    assert episodes.begin_subtask(env, "turn_on_led") == "" and env.begun == ["open_drawer", "turn_on_led"]
    assert episodes.begin_subtask(env, "move_slider_left") == ""  # another task while held: begun afresh
    assert env.begun[-1] == "move_slider_left" and episodes.current.instruction == "do move_slider_left"
    episodes.current = Episode("open_drawer", 0, "none", "x")  # a task episode: nothing to resume
    assert episodes.resume() == ""
