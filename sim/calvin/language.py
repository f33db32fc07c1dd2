"""Many training instructions per CALVIN task from a small grammar, for language augmentation of the policies.

:func:`ivm_ros_sim.calvin.tasks.paraphrases` gives 4 training sentences per task (the ones the data engine records).
A policy that saw only those meets CALVIN's evaluation sentence as unfamiliar language: measured on the ABC->D
raw policy over the expert's own frames, the evaluation sentence left its commands weaker than the recorded
paraphrase (rotate the block left: mean yaw command +0.49 vs +0.70; move the slider left: +0.33 vs +0.57, sign
right on 81 % of the frames instead of 98 %). CALVIN's own training annotations have about 11 sentences per task,
several of them built as "grasp / take the X block and rotate / turn it left". :func:`grammar_paraphrases` writes
such variety of our own: verbs x sentence frames per task family (20-40 sentences per task), deterministic.

Never in the result: the task's evaluation sentence (so the benchmark's language stays unseen) and its held-out
paraphrase (``paraphrases(task, "heldout")``, kept for measuring language generalisation).
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
from ivm_ros_sim.calvin.tasks import check_task, eval_sentences, paraphrases, target_block

#: per family: (verbs, frames); a frame's {v} takes each verb, {c} the block colour, {s} the side / state word
_ROTATE = (("rotate", "turn", "twist", "spin"),
           ("{v} the {c} block {s}", "{v} the {c} block to the {s}", "{v} the {c} block towards the {s}",
            "{v} {s} the {c} block", "grasp the {c} block and {v} it {s}", "grasp the {c} block, then {v} it {s}",
            "take the {c} block and {v} it {s}", "pick up the {c} block and {v} it to the {s}"))
_PUSH = (("push", "slide", "shove", "nudge", "move"),
         ("{v} the {c} block {s}", "{v} the {c} block to the {s}", "{v} the {c} block towards the {s}",
          "{v} the {c} block over to the {s}", "{v} the {c} block a bit to the {s}"))
_SLIDER = (("push", "slide", "move", "shift"),
           ("{v} the sliding door {s}", "{v} the sliding door to the {s}", "{v} the door of the cabinet {s}",
            "{v} the slider to the {s}", "grasp the sliding door and {v} it {s}", "{v} the cabinet door to the {s}"))
#: ``grammar2`` adds these slider frames in the style of CALVIN's own training annotations ("move the door to the left
#: side", "slide the door all the way to the left"): with ``grammar`` alone, the evaluation sentence "push the sliding
#: door to the right side" turned the ABC->D masked policy's commands away from the right (``sim-language-probe``:
#: mean x +0.03 against -0.10 with the recorded paraphrase), the unseen word "side" outweighing "right"
_SLIDER_DOOR = ("{v} the door to the {s}", "{v} the door to the {s} side", "{v} the door all the way to the {s}",
                "grasp the door handle and {v} the door to the {s}")
#: the ``--language`` choices that draw from the grammar (``grammar``: session 20's, that of calvin_abc v2)
GRAMMARS = ("grammar", "grammar2")
_LIFT = (("lift", "pick up", "grasp and lift", "grab", "take", "raise"),
         {"table": ("{v} the {c} block", "{v} the {c} block from the table", "{v} the {c} block off the table",
                    "{v} the {c} block lying on the table"),
          "slider": ("{v} the {c} block from the sliding cabinet", "{v} the {c} block in the cabinet",
                     "{v} the {c} block from the shelf", "{v} the {c} block out of the cabinet"),
          "drawer": ("{v} the {c} block from the drawer", "{v} the {c} block out of the drawer",
                     "{v} the {c} block in the drawer", "{v} the {c} block lying in the drawer")})
_PLACE = (("put", "place", "store", "drop", "set down"),
          ("{v} the {o} in the {p}", "{v} the {o} into the {p}", "{v} the {o} inside the {p}"),
          ("block", "grasped block", "held block", "object"))
_FIXED = {
    "open_drawer": ("open the drawer", "pull the drawer open", "pull the handle of the drawer", "pull out the drawer",
                    "grasp the drawer handle and pull it", "grasp the handle and open the drawer",
                    "open the cabinet drawer", "slide the drawer out", "go open the drawer",
                    "pull the drawer towards you"),
    "close_drawer": ("close the drawer", "push the drawer shut", "push the handle of the drawer", "push the drawer in",
                     "grasp the drawer handle and push it", "grasp the handle and close the drawer",
                     "close the cabinet drawer", "slide the drawer in", "go close the drawer", "shut the drawer"),
    "stack_block": ("stack the blocks", "stack the block on the other block", "put the block on top of another block",
                    "place the grasped block on the other block", "set the held block on top of the other one",
                    "build a tower with the blocks", "stack the object on top of the other block"),
    "unstack_block": ("unstack the blocks", "take the top block off", "remove the top block from the stack",
                      "lift the top block off the other one", "take the block on top off", "break up the stack",
                      "unstack the tower", "pick the top block off the stack"),
    "push_into_drawer": ("push the block into the drawer", "slide the block into the drawer",
                         "shove the block into the drawer", "sweep the block into the drawer",
                         "push the block off the table into the drawer", "slide the block so it drops into the drawer",
                         "nudge the block over the edge into the drawer", "push the block so it falls in the drawer"),
}
_LIGHTS = {
    "lightbulb": ("turn {s} the light bulb", "turn {s} the lamp", "switch {s} the light bulb", "switch the lamp {s}",
                  "turn the yellow light {s}", "move the switch to turn the bulb {s}", "slide the switch {d}",
                  "push the switch {d}", "move the switch {d}", "flip the switch to turn the light bulb {s}"),
    "led": ("turn {s} the led", "turn {s} the green light", "switch {s} the led", "switch the green light {s}",
            "press the button to switch the led {s}", "push the button to turn {s} the green light",
            "toggle the button to turn {s} the led", "press the black button to turn the green lamp {s}",
            "push the button so the led goes {s}"),
}


def _sentences(task: str, grammar: str) -> list[str]:
    kind, *args = check_task(task)
    if grammar not in GRAMMARS:
        raise ValueError(f"unknown grammar {grammar!r}; choose from {GRAMMARS}")
    if task in _FIXED:
        return list(_FIXED[task])
    if kind in ("rotate_object", "push_object"):
        verbs, frames = _ROTATE if kind == "rotate_object" else _PUSH
        side = "left" if (args[1] > 0 if kind == "rotate_object" else args[1] < 0) else "right"
        color = target_block(task).split("_")[1]
        return [f.format(v=v, c=color, s=side) for f, v in itertools.product(frames, verbs)]
    if task.startswith("move_slider"):
        verbs, frames = _SLIDER[0], _SLIDER[1] + (_SLIDER_DOOR if grammar == "grammar2" else ())
        return [f.format(v=v, s=task.rsplit("_", 1)[1]) for f, v in itertools.product(frames, verbs)]
    if kind == "lift_object":
        verbs, frames_by_place = _LIFT
        color, place = target_block(task).split("_")[1], task.rsplit("_", 1)[1]
        return [f.format(v=v, c=color) for f, v in itertools.product(frames_by_place[place], verbs)]
    if task.startswith("place_in"):
        verbs, frames, objects = _PLACE
        place = "sliding cabinet" if task.endswith("slider") else "drawer"
        return [f.format(v=v, o=o, p=place) for f, v, o in itertools.product(frames, verbs, objects)]
    light, state = ("lightbulb" if "lightbulb" in task else "led"), ("on" if task.startswith("turn_on") else "off")
    return [f.format(s=state, d="up" if state == "on" else "down") for f in _LIGHTS[light]]


@cache
def _grammar(task: str, grammar: str) -> tuple[str, ...]:
    generated = _sentences(task, grammar)  # first: it checks the task and the grammar
    unseen = {eval_sentences()[task].lower(), *(s.lower() for s in paraphrases(task, "heldout"))}
    out = dict.fromkeys(s for s in [*paraphrases(task, "train"), *generated] if s.lower() not in unseen)
    return tuple(out)


def grammar_paraphrases(task: str, grammar: str = "grammar") -> list[str]:
    """The task's training paraphrases first, then the sentences of ``grammar`` (one of :data:`GRAMMARS`); never
    its evaluation sentence or held-out paraphrase. ValueError for an unknown task or grammar."""
    return list(_grammar(task, grammar))


def augmented_sentences(instructions: list[str], tasks: list[str], grammar: str = "grammar"
                        ) -> tuple[list[str], list[np.ndarray]]:
    """Language augmentation table of recorded instructions (``DemoSet.instructions`` with their ``tasks``):
    (sentences, alternatives): every recorded instruction first (row i = instruction i), then the grammar's
    sentences of their tasks; ``alternatives[i]`` (int64 rows) = instruction i and its task's grammar sentences.
    ValueError (naming it) for a task that is not CALVIN's."""
    if len(instructions) != len(tasks):
        raise ValueError(f"{len(instructions)} instructions for {len(tasks)} tasks")
    rows = {s: i for i, s in enumerate(instructions)}
    sentences = list(instructions)
    alternatives = []
    for instr, task in zip(instructions, tasks):
        try:
            extra = grammar_paraphrases(task, grammar)
        except ValueError as exc:
            raise ValueError(f"language augmentation knows CALVIN's 34 tasks only: {exc}") from exc
        for s in extra:
            if s not in rows:
                rows[s] = len(sentences)
                sentences.append(s)
        alternatives.append(np.array(sorted({rows[instr], *(rows[s] for s in extra)}), np.int64))
    return sentences, alternatives
