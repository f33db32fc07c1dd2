"""The grammar of training instructions (language augmentation): many sentences per task, never the evaluation
sentence or the held-out paraphrase, and sentences that say the task's own block, side and state."""

from __future__ import annotations

import numpy as np
import pytest
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.language import GRAMMARS, augmented_sentences, grammar_paraphrases


@pytest.mark.parametrize("grammar", GRAMMARS)
def test_every_task_gets_many_sentences_and_never_the_unseen_ones(grammar):
    for task in T.all_tasks():
        got = grammar_paraphrases(task, grammar)
        assert len(got) >= 10 and len(set(got)) == len(got), task
        assert got[:len(T.paraphrases(task, "train"))] == T.paraphrases(task, "train")
        unseen = {T.eval_sentences()[task].lower(), T.paraphrases(task, "heldout")[0].lower()}
        assert not unseen & {s.lower() for s in got}, task
        assert got == grammar_paraphrases(task, grammar)  # deterministic


@pytest.mark.parametrize("grammar", GRAMMARS)
def test_sentences_name_the_tasks_block_side_and_state(grammar):
    for task in T.all_tasks():
        block = T.target_block(task)
        for s in grammar_paraphrases(task, grammar)[len(T.paraphrases(task, "train")):]:  # the grammar's own
            words = s.split()
            if block and task.startswith(("rotate", "push_", "lift")):
                assert block.split("_")[1] in words, (task, s)
            if task.endswith(("left", "right")):
                side, other = ("left", "right") if task.endswith("left") else ("right", "left")
                assert side in words and other not in words, (task, s)
            if task.startswith(("turn_on", "turn_off")):
                on = task.startswith("turn_on")
                assert ({"on", "up"} if on else {"off", "down"}) & set(words), (task, s)
                assert not ({"off", "down"} if on else {"on", "up"}) & set(words), (task, s)
    # opposite tasks share no sentence
    for a, b in (("rotate_red_block_left", "rotate_red_block_right"), ("open_drawer", "close_drawer"),
                 ("move_slider_left", "move_slider_right"), ("turn_on_led", "turn_off_led"),
                 ("lift_red_block_table", "lift_red_block_slider")):
        assert not set(grammar_paraphrases(a, grammar)) & set(grammar_paraphrases(b, grammar))


def test_grammar2_adds_door_frames_to_the_slider_tasks_only():
    for task in T.all_tasks():
        first, second = grammar_paraphrases(task), grammar_paraphrases(task, "grammar2")
        if not task.startswith("move_slider"):
            assert second == first, task
            continue
        side = task.rsplit("_", 1)[1]
        added = second[len(first):]
        assert second[:len(first)] == first and len(added) >= 10
        assert f"move the door to the {side} side" in added and f"slide the door all the way to the {side}" in added
        assert not any("sliding door" in s and "side" in s for s in added)  # the evaluation sentence's wording
    with pytest.raises(ValueError, match="unknown grammar 'grammar9'"):
        grammar_paraphrases("open_drawer", "grammar9")


def test_augmented_sentences_keep_recorded_rows_first_and_group_by_task():
    recorded = ["twist the red block left", "close the drawer", "push the drawer shut"]
    tasks = ["rotate_red_block_left", "close_drawer", "close_drawer"]
    sentences, alternatives = augmented_sentences(recorded, tasks)
    assert sentences[:3] == recorded and len(set(sentences)) == len(sentences)
    for i, task in enumerate(tasks):
        assert alternatives[i].dtype == np.int64 and i in alternatives[i]
        assert {sentences[r] for r in alternatives[i]} == {recorded[i], *grammar_paraphrases(task)}
    assert np.array_equal(alternatives[1], alternatives[2])  # same task, same set (both recorded ones are in it)
    with pytest.raises(ValueError, match="CALVIN's 34 tasks only: unknown task 'widowx_carrot_on_plate'"):
        augmented_sentences(["put the carrot on the plate"], ["widowx_carrot_on_plate"])
    with pytest.raises(ValueError, match="2 instructions for 1 tasks"):
        augmented_sentences(recorded[:2], tasks[:1])
