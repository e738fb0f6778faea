"""Hardware costs of a built network: parameters, FLOPs and measured latency."""

from __future__ import annotations

import torch.nn as nn

from nasforge.hardware.counting import count_flops, count_params
from nasforge.hardware.latency import measure_latency

__all__ = ["count_flops", "count_params", "measure_latency", "model_costs"]


def model_costs(model: nn.Module, input_shape: tuple[int, ...], *, latency: bool = True) -> dict[str, float]:
    """`params`, `flops` (PyTorch's count, batch 1) and, if asked, `latency_ms` (CPU, batch 1, median)."""
    costs: dict[str, float] = {"params": count_params(model), "flops": count_flops(model, input_shape)}
    if latency:
        costs["latency_ms"] = measure_latency(model, input_shape).median_ms
    return costs
