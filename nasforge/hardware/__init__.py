"""Hardware costs of a built network: parameters, FLOPs and measured latency."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from nasforge.hardware.counting import count_flops, count_params
from nasforge.hardware.latency import measure_latency

__all__ = ["COST_MEASURES", "count_flops", "count_params", "measure_latency", "model_costs"]

#: how each cost metric is measured on a built network and its (C, H, W) input, batch 1
COST_MEASURES: dict[str, Callable[[nn.Module, tuple[int, ...]], float]] = {
    "params": lambda model, shape: count_params(model),
    "flops": count_flops,
    "latency_ms": lambda model, shape: measure_latency(model, shape).median_ms,
}


def model_costs(model: nn.Module, input_shape: tuple[int, ...], *, latency: bool = True) -> dict[str, float]:
    """`params`, `flops` (PyTorch's count, batch 1) and, if asked, `latency_ms` (CPU, batch 1, median)."""
    costs: dict[str, float] = {"params": count_params(model), "flops": count_flops(model, input_shape)}
    if latency:
        costs["latency_ms"] = measure_latency(model, input_shape).median_ms
    return costs
