"""The design-spaces benchmark's measuring path on digits (tiny): each space's sample is trained and
summarised, and the 400MF table reads the built models' real counts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # scripts, not a package

from design_spaces import constraint_steps, reference_models, reference_table, render, run_space

from nasforge.design.compare import summarize


def test_spaces_are_sampled_in_range_and_trained():
    with torch.random.fork_rng():
        trained = {name: run_space(name, "digits", 2, 1, 0, (2e5, 8e5)) for name in ("anynet_e", "regnet")}
    summary = summarize(trained)
    for name, result in trained.items():
        assert len(result.errors) == 2 and all(2e5 <= f <= 8e5 for f in result.flops)
        assert 0 <= summary["edf_area"][name] <= 1
    results = summary | {"settings": {"n": 2, "epochs": 1, "flops_range": [2e5, 8e5], "data": "digits", "seed": 0,
                                      "seconds": 1.0}, "regnet_400mf": []}
    (step,) = constraint_steps(results)
    assert step["from"] == "anynet_e" and step["to"] == "regnet"
    low, high = step["interval"]
    expected = "improves" if low > 0 else "worse" if high < 0 else "keeps (no significant change)"
    assert low <= high and step["verdict"] == expected
    assert step["area_change"] == summary["edf_area"]["regnet"] - summary["edf_area"]["anynet_e"]
    assert "| anynet_e -> regnet |" in render(results, "_quick")


def test_400mf_table():
    rows = reference_models()
    assert [r["params"] for r in rows] == [5_157_512, 4_344_144]
    for r in rows:
        assert r["macs"] == pytest.approx(400e6, rel=0.015) and r["flops"] == pytest.approx(2 * r["macs"], rel=0.01)
    assert "| RegNetX-400MF | 5,157,512 | 5,157,512 | 397.7 |" in reference_table(rows)
