"""``ivm-ros bench policy``: per-step cost of the embedded policy as policy_node runs it.

Rows: the whole ``act()`` (resize, window-2 history, jitted forward, temporal ensembling, sticky gripper) and the
forward pass alone, jitted vs eager (``jax.disable_jit``: the same model without XLA compilation, as a
reference), plus ``reset()`` with a new instruction (MiniLM embedding). The target is <= 20 ms per step.

``--arch KEY=VALUE`` (e.g. ``static_size=128``, ``widths=[32,64,128,128]``, ``hidden=512``) adds the same rows for
that arch (the checkpoint's with these sizes changed, untrained weights: speed does not depend on what was
learnt) beside the checkpoint's, with its parameter count, file size and act() time relative to the checkpoint's:
what a grown policy would cost before training it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ivm_ros.commands.bench.common import add_json_flag, emit_json, percentiles, print_table, time_calls
from ivm_ros.commands.options import key_values
from ivm_ros.policies.base import Observation
from ivm_ros.policies.embedded.checkpoint import SHIPPED


def _bench(policy: Any, name: str, repeat: int) -> tuple[list[dict[str, Any]], float]:
    """Rows of one policy, and its act() p50 in ms."""
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
    act = time_calls(lambda: policy.act(obs), repeat)
    fwd = time_calls(jitted, repeat)
    ref = time_calls(eager, max(5, repeat // 10), warmup=1)
    reset = time_calls(lambda: policy.reset(next(words)), max(5, repeat // 5))
    rows = []
    for stage, ms, ratio in (("act (whole step)", act, None), ("forward, jitted", fwd, float(np.median(ref) /
                             np.median(fwd))), ("forward, eager (reference)", ref, 1.0),
                             ("reset, new instruction", reset, None)):
        rows.append({"policy": name, "stage": stage, **percentiles(ms),
                     "speed-up vs eager": "" if ratio is None else round(ratio, 1)})
    return rows, float(np.median(act))


def _size(policy: Any) -> dict[str, Any]:
    from ivm_ros.policies.embedded.checkpoint import parameter_count

    a = policy.core.arch
    return {"parameters": parameter_count(policy.core.params), "file_mb": round(Path(policy.core.path).stat().st_size
            / 2**20, 2), "static_size": a.static_size, "widths": list(a.widths), "hidden": a.hidden}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros bench policy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="masked", choices=sorted(SHIPPED))
    parser.add_argument("--checkpoint", default="", help="a .msgpack policy (default: the shipped variant)")
    parser.add_argument("--arch", action="append", default=[], metavar="KEY=VALUE",
                        help="also bench the checkpoint's arch with these sizes changed (untrained weights)")
    parser.add_argument("--repeat", type=int, default=50)
    add_json_flag(parser)
    args = parser.parse_args(argv)
    from ivm_ros.policies.embedded import checkpoint
    from ivm_ros.policies.embedded.policy import EmbeddedConfig, EmbeddedPolicy

    policy = EmbeddedPolicy(EmbeddedConfig(variant=args.variant, checkpoint=args.checkpoint))
    path = policy.core.path
    rows, act = _bench(policy, "checkpoint", args.repeat)
    sizes = {"checkpoint": _size(policy)}
    grown = None
    if args.arch:
        try:
            arch = policy.core.arch.replaced(key_values(args.arch, "--arch", "bench policy"))
        except ValueError as exc:
            raise SystemExit(f"bench policy: --arch: {exc}") from None
        policy.close()
        with tempfile.TemporaryDirectory() as tmp:
            policy = EmbeddedPolicy(EmbeddedConfig(checkpoint=str(checkpoint.save_untrained(
                Path(tmp) / "arch.msgpack", arch, {"masking": "none"}))))
            more, grown = _bench(policy, "--arch", args.repeat)
            rows += more
            sizes["--arch"] = _size(policy)
    print_table(rows, ["policy", "stage", "p50", "p95", "max", "speed-up vs eager"])
    for name, s in sizes.items():
        ratio = f", act p50 {grown / act:.2f}x the checkpoint's" if name == "--arch" else ""
        print(f"{name}: {s['parameters']:,} parameters, {s['file_mb']} MB, static {s['static_size']} px, widths "
              f"{s['widths']}, hidden {s['hidden']}{ratio}")
    worst = max(act, grown or 0.0)
    print(f"checkpoint {path}; target act p50 <= 20 ms: {'met' if worst <= 20 else 'missed'}")
    emit_json(args, {"bench": "policy", "checkpoint": path, "rows": rows, "sizes": sizes,
                     **({"arch_act_ratio": grown / act} if grown else {})})
    policy.close()
    return 0
