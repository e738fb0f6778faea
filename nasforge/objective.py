"""What a search optimises: a metric of the `Result`, maximised or minimised."""

from __future__ import annotations

from dataclasses import dataclass

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result, finite


@dataclass(frozen=True)
class Objective:
    """One metric to optimise; `score` is higher-is-better, `None` for failed or missing results."""

    metric: str = "val_acc"
    mode: str = "max"

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise NasforgeError(f"objective.mode: '{self.mode}' is not allowed (allowed: max, min)")
        if self.metric.startswith("test_"):
            raise NasforgeError(f"objective.metric: '{self.metric}' is a test metric; select by validation metrics")

    def score(self, result: Result) -> float | None:
        value = result.metrics.get(self.metric)
        if not result.ok or not finite(value):
            return None
        return float(value) if self.mode == "max" else -float(value)
