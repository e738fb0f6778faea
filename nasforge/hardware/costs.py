"""Hardware costs added to any estimator's results, for objectives that read them (`pareto:val_acc,flops`
on a table that has no FLOPs column), with latency optionally predicted by a lookup table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator, Result
from nasforge.hardware import COST_MEASURES
from nasforge.hardware.lookup import LatencyTable
from nasforge.spaces.base import Arch, SearchSpace

__all__ = ["WithCosts"]


class WithCosts(Estimator):
    """`estimator`'s results, plus each metric of `metrics` (params, flops, latency_ms) they lack, measured on
    the built network (batch 1). With `latency_table`, `latency_ms` is always the table's prediction (units
    missing from the table are timed once and added to it) instead of a measurement."""

    def __init__(self, estimator: Estimator, space: SearchSpace, input_shape: tuple[int, ...], num_classes: int,
                 metrics: Sequence[str], latency_table: LatencyTable | None = None) -> None:
        unknown = [m for m in metrics if m not in COST_MEASURES]
        if unknown:
            raise NasforgeError(f"metrics: '{unknown[0]}' is not a hardware cost (allowed: {', '.join(COST_MEASURES)})")
        if latency_table is not None and (tuple(latency_table.input_shape), latency_table.num_classes) != (
                tuple(input_shape), num_classes):
            raise NasforgeError(f"latency_table: measured for input {list(latency_table.input_shape)} and "
                                f"{latency_table.num_classes} classes, the run builds {list(input_shape)} and {num_classes}")
        self.estimator, self.space, self.input_shape, self.num_classes = estimator, space, tuple(input_shape), num_classes
        self.metrics, self.latency_table = tuple(metrics), latency_table

    def evaluate(self, arch: Arch, fidelity: float | None = None) -> Result:
        result = self.estimator.evaluate(arch, fidelity)
        table = self.latency_table
        missing = [m for m in self.metrics if m not in result.metrics]
        if table is not None and "latency_ms" not in missing:
            missing.append("latency_ms")
        if not result.ok or not missing:
            return result
        with torch.random.fork_rng(devices=[]):  # weights do not change costs; the global RNG stays as it was
            model = self.space.build(arch, self.input_shape, self.num_classes)
        costs = {m: table.predict(model, measure_missing=True) if m == "latency_ms" and table is not None
                 else float(COST_MEASURES[m](model, self.input_shape)) for m in missing}
        return replace(result, metrics={**result.metrics, **costs})
