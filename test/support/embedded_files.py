"""Real embedded-policy files of a tiny arch with untrained (randomly initialised) weights, for tests about what
surrounds a policy file (loading, metadata, pairing), not about what it has learnt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ivm_ros.policies.embedded import checkpoint as ck
from ivm_ros.policies.embedded.model import PolicyArch

TINY = PolicyArch(static_size=32, gripper_size=16, widths=(8, 16), gripper_widths=(8,), hidden=32)


def untrained_policy_file(path: str | Path, info: dict[str, Any], arch: PolicyArch = TINY) -> Path:
    """Writes an ``arch`` policy with seed-0 initial weights, unit proprio normalisation and ``info``; its path."""
    return ck.save_untrained(path, arch, info)
