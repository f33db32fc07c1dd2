"""``ivm-ros bench ivm``: the tiny run reports every part of the GPU check; the full-size check without CUDA says
so and exits cleanly."""

from __future__ import annotations

import json
import math

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from ivm_ros.commands.bench.ivm import main


def test_tiny_run_reports_agreement_reference_and_memory_options(capsys):
    assert main(["--tiny", "--iters", "2", "--warmup", "1", "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["size"] == "tiny" and [c["batch"] for c in result["cases"]] == [1, 4]
    assert all(math.isfinite(c["engine"]["p95_ms"]) and c["speedup"] > 0 for c in result["cases"])
    agreement = result["agreement"]
    assert 0 < agreement["release_vs_fp32"]["max_abs"] < agreement["bf16_vs_fp32"]["max_abs"] < 0.01
    assert agreement["bf16_vs_fp32"]["mask_agree_0.5"] > 0.99
    assert 0 <= agreement["lora_merge_bf16"]["elements_unchanged"] < 1
    assert [r["placement"] for r in result["memory_options"]] == ["offload"]
    assert "agreement bf16_vs_fp32" in out


def test_time_budget_skips_the_optional_part(capsys):
    assert main(["--tiny", "--iters", "1", "--warmup", "0", "--batches", "1", "--no-reference", "--budget-s", "0",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "time budget" in result["memory_options"]["skipped"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_full_without_cuda_says_so_and_exits_cleanly(capsys):
    assert main(["--full", "--json"]) == 0
    captured = capsys.readouterr()
    assert "no CUDA GPU here" in captured.err and "nothing was measured" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["skipped"] == "no CUDA GPU"
    assert main([]) == 2  # without --full, asking for the full size on a CPU is a usage error, as before
