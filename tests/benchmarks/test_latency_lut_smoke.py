"""The lookup-table benchmark's measuring path: its accuracy statistics by hand, and a tiny run of the same code."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # scripts, not a package

import latency_lut  # noqa: E402


def test_accuracy_statistics_by_hand():
    r = latency_lut.accuracy([1.05, 2.5, 2.9, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert r["mape"] == pytest.approx((0.05 + 0.25 + 0.1 / 3 + 0) / 4)
    assert r["within_10pct"] == 0.75 and r["spearman"] == pytest.approx(1.0)


def test_a_tiny_run_reports_every_field(monkeypatch):
    monkeypatch.setitem(latency_lut.SPACES, "nb201", ((3, 16, 16), 10))
    monkeypatch.setitem(latency_lut.EXTRA, True, (3, 2))
    r = latency_lut.measure_space("nb201", "eager", archs=4, quick=True)
    assert {"spearman", "mape", "within_10pct", "repeat_cv", "predictor", "uncorrected"} <= set(r)
    assert {"spearman", "mape", "within_10pct", "repeat_cv"} <= set(r["uncorrected"])
    assert r["archs"] == 4 and r["units"] > 0 and 0 <= r["within_10pct"] <= 1 and r["repeat_cv"] >= 0
    assert "| nb201 | eager | 4 |" in latency_lut.report({"nb201": {"eager": r}})
