"""Validation of what nodes and tools receive, shared by all of them (no ROS): a rejection carries a short
stable ``reason`` that nodes count as ``rejected_<reason>``."""

from __future__ import annotations

import unicodedata


class InputRejected(ValueError):
    """An input that cannot be used. ``reason`` is a short stable key for counters, ``detail`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check_instruction(text: str, max_chars: int) -> str:
    """The instruction with surrounding whitespace removed; raises :class:`InputRejected` for one that was not
    valid UTF-8 (rclpy decodes such bytes with U+FFFD replacement characters) or holds control characters other
    than whitespace (``instruction_encoding``), an empty one (``instruction_empty``) or one longer than
    ``max_chars`` characters (``instruction_too_long``)."""
    bad = next((c for c in text if c == "\ufffd" or (unicodedata.category(c) in ("Cc", "Cs") and not c.isspace())),
               None)
    if bad is not None:
        raise InputRejected("instruction_encoding", f"instruction with {bad!r} (invalid UTF-8 or a control "
                            "character) ignored; keeping the previous one")
    text = text.strip()
    if not text:
        raise InputRejected("instruction_empty",
                            "empty or whitespace-only instruction ignored; keeping the previous one")
    if len(text) > max_chars:
        raise InputRejected("instruction_too_long", f"instruction of {len(text)} chars > max_instruction_chars="
                            f"{max_chars} ignored; keeping the previous one")
    return text
