"""The grammar of training instructions (language augmentation): many sentences per task, never the evaluation
sentence or the held-out paraphrase, and sentences that say the task's own block, side and state."""

from __future__ import annotations

import numpy as np
import pytest
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.language import augmented_sentences, grammar_paraphrases


def test_every_task_gets_many_sentences_and_never_the_unseen_ones():
    for task in T.all_tasks():
        got = grammar_paraphrases(task)
        assert len(got) >= 10 and len(set(got)) == len(got), task
        assert got[:len(T.paraphrases(task, "train"))] == T.paraphrases(task, "train")
        unseen = {T.eval_sentences()[task].lower(), T.paraphrases(task, "heldout")[0].lower()}
        assert not unseen & {s.lower() for s in got}, task
        assert got == grammar_paraphrases(task)  # deterministic


def test_sentences_name_the_tasks_block_side_and_state():
    for task in T.all_tasks():
        block = T.target_block(task)
        for s in grammar_paraphrases(task)[len(T.paraphrases(task, "train")):]:  # the grammar's own
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
        assert not set(grammar_paraphrases(a)) & set(grammar_paraphrases(b))


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
