"""Pruning-at-initialisation saliencies summed over a network's conv and linear weights: the better the
untrained network's weights score, the better the trained network is predicted to be (Abdelfattah et
al., 2021, "Zero-Cost Proxies for Lightweight NAS", who sum these per-weight scores over the network).

- snip: sum |W * dL/dW| (Lee et al., 2019, "SNIP: Single-shot Network Pruning based on Connection Sensitivity")
- grad_norm: the sum over layers of ||dL/dW||_2
- grasp: sum -W * H dL/dW (Wang et al., 2020, "Picking Winning Tickets Before Training by Preserving Gradient Flow")
- fisher: the sum over channels of 0.5 * E[(sum over positions of activation x gradient)^2]
  (Theis et al., 2018; Turner et al., 2020, "BlockSwap")
- synflow: sum W * dR/dW for R the summed output of the network with |W| and an all-ones input, no data
  (Tanaka et al., 2020, "Pruning neural networks without any data by iteratively conserving synaptic flow")
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from nasforge.estimators.zero_cost.probe import Probe, replace_modules, weighted_layers

__all__ = ["fisher", "grad_norm", "grasp", "snip", "synflow"]


def snip(probe: Probe) -> float:
    return sum(float((w * g).abs().sum()) for w, g in zip(probe.weights, probe.grads))


def grad_norm(probe: Probe) -> float:
    return sum(float(g.norm()) for g in probe.grads)


def grasp(probe: Probe) -> float:
    if probe.hessian_grads is None:
        raise ValueError(probe.errors.get("hessian", "no Hessian-gradient product"))
    return sum(float(-(w * hg).sum()) for w, hg in zip(probe.weights, probe.hessian_grads))


def fisher(probe: Probe) -> float:
    return sum(float(channels.sum()) for channels in probe.fisher)


def synflow(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Synaptic flow of a float64 copy of `model` with every parameter and buffer made non-negative and
    batch normalisation removed, as the zero-cost reference implementation does (on a freshly
    initialised network that equals Tanaka et al.'s BN in eval mode, at mean 0 and variance 1).

    Float64 because the flow multiplies along every path through the network: float32 overflows on
    deep ones. Returns inf when even float64 overflows (the caller flags it)."""
    model = replace_modules(copy.deepcopy(model), nn.modules.batchnorm._BatchNorm, lambda _: nn.Identity())
    model = model.double().eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    device = next((p.device for p in model.parameters()), None)
    model(torch.ones((1, *input_shape), dtype=torch.float64, device=device)).sum().backward()
    return sum(float((layer.weight * layer.weight.grad).detach().sum()) for layer in weighted_layers(model)
               if layer.weight.grad is not None)
