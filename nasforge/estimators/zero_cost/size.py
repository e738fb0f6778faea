"""Size proxies: bigger untrained networks tend to train to higher accuracy, the baseline every
zero-cost proxy has to beat (Ning et al., 2021, "Evaluating Efficient Performance Estimators of
Neural Architectures")."""

from __future__ import annotations

import torch.nn as nn

from nasforge.estimators.zero_cost.probe import weighted_layers
from nasforge.hardware.counting import count_flops, count_params

__all__ = ["flops", "l2_norm", "params"]


def params(model: nn.Module) -> float:
    return float(count_params(model))


def flops(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    return float(count_flops(model, input_shape))


def l2_norm(model: nn.Module) -> float:
    """The sum over conv and linear layers of the L2 norm of the weight."""
    return sum(float(layer.weight.detach().norm()) for layer in weighted_layers(model))
