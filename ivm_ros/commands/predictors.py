"""``ivm-ros predictors``: lists registered predictors and their settings."""

from __future__ import annotations

import argparse

from ivm_ros.models.registry import REGISTRY, PredictorLoadError, available, config_fields


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="ivm-ros predictors", description=__doc__).parse_args(argv)
    for name in available():
        try:
            fields = config_fields(name)
        except PredictorLoadError as exc:
            print(f"{name:<14} {REGISTRY[name]}  (unavailable: {exc})")
            continue
        settings = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        print(f"{name:<14} {REGISTRY[name]}\n{'':<14} {settings}")
    return 0
