"""``ivm-ros bench policy``: per-step cost of the embedded policy as policy_node runs it.

Rows: the whole ``act()`` (resize, window-2 history, jitted forward, temporal ensembling, sticky gripper) and the
forward pass alone, jitted vs eager (``jax.disable_jit``: the same model without XLA compilation, as a
reference), plus ``reset()`` with a new instruction (MiniLM embedding). The target is <= 20 ms per step.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from ivm_ros.commands.bench.common import add_json_flag, emit_json, percentiles, print_table, time_calls
from ivm_ros.policies.base import Observation
from ivm_ros.policies.embedded.checkpoint import SHIPPED


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros bench policy", description=__doc__)
    parser.add_argument("--variant", default="masked", choices=sorted(SHIPPED))
    parser.add_argument("--checkpoint", default="", help="a .msgpack policy (default: the shipped variant)")
    parser.add_argument("--repeat", type=int, default=50)
    add_json_flag(parser)
    args = parser.parse_args(argv)
    from ivm_ros.policies.embedded.policy import EmbeddedConfig, EmbeddedPolicy

    policy = EmbeddedPolicy(EmbeddedConfig(variant=args.variant, checkpoint=args.checkpoint))
    rng = np.random.default_rng(0)
    obs = Observation(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8),
                      rng.integers(0, 256, (84, 84, 3), dtype=np.uint8), rng.normal(size=15))
    policy.reset("grasp and lift the red block")
    core = policy.core
    a = core.arch
    inputs = (np.zeros((1, a.window, a.static_size, a.static_size, 3), np.uint8),
              np.zeros((1, a.window, a.gripper_size, a.gripper_size, 3), np.uint8),
              np.zeros((1, a.proprio_dim), np.float32), core._text)

    def jitted() -> None:
        jax.block_until_ready(core._apply(core.params, *inputs))

    def eager() -> None:
        with jax.disable_jit():
            jax.block_until_ready(core.model.apply(core.params, *inputs))

    words = iter(f"grasp and lift the red block, take {i}" for i in range(10**6))
    rows = []
    act = time_calls(lambda: policy.act(obs), args.repeat)
    fwd = time_calls(jitted, args.repeat)
    ref = time_calls(eager, max(5, args.repeat // 10), warmup=1)
    reset = time_calls(lambda: policy.reset(next(words)), max(5, args.repeat // 5))
    for stage, ms, ratio in (("act (whole step)", act, None), ("forward, jitted", fwd, float(np.median(ref) /
                             np.median(fwd))), ("forward, eager (reference)", ref, 1.0),
                             ("reset, new instruction", reset, None)):
        rows.append({"stage": stage, **percentiles(ms), "speed-up vs eager": "" if ratio is None else round(ratio, 1)})
    print_table(rows, ["stage", "p50", "p95", "max", "speed-up vs eager"])
    print(f"checkpoint {core.path}; target act p50 <= 20 ms: {'met' if np.median(act) <= 20 else 'missed'}")
    emit_json(args, {"bench": "policy", "checkpoint": core.path, "rows": rows})
    policy.close()
    return 0
