"""Proxies that read how an untrained network separates its inputs, not its weights' saliency.

- naswot: the log-determinant of the kernel of the inputs' binary activation codes, K[i, j] = number of
  units on which inputs i and j fall in the same region (Mellor et al., 2021, "Neural Architecture
  Search without Training", v2): networks that give different inputs different codes train better.
- jacob_cov: -sum(log(v + k) + 1 / (v + k)) over the eigenvalues v of the correlation matrix of the
  per-input Jacobians d(sum of logits)/d(input), k = 1e-5 (the same paper's v1): correlated Jacobians
  mean inputs are mapped alike.
- zen: log E||f(x) - f(x + 0.01 e)|| / 0.01 + sum over BN layers of log sqrt(mean batch variance),
  f the pre-pooling feature map of the network re-initialised with N(0, 1) weights, x and e Gaussian,
  BN layers whose input is constant (dead branches) left out (Lin et al., 2021, "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition").
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn as nn

from nasforge.estimators.zero_cost.probe import Probe, weighted_layers

__all__ = ["jacob_cov", "naswot", "zen"]

JACOB_COV_K = 1e-5
ZEN_MIXUP = 0.01


def naswot(probe: Probe) -> float:
    """log |det K|; -inf when two inputs share a code everywhere (or no activation was coded)."""
    if probe.code_kernel is None:
        return -math.inf
    sign, logdet = np.linalg.slogdet(probe.code_kernel.double().cpu().numpy())
    return float(logdet) if sign > 0 else -math.inf


def jacob_cov(probe: Probe) -> float:
    """NaN when the correlation is undefined (a Jacobian with no spread, e.g. a network cut off its input)."""
    jacobian = probe.jacobian.double().cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.corrcoef(jacobian)
    if not np.isfinite(correlation).all():
        return math.nan
    eigenvalues = np.linalg.eigvalsh(correlation)
    return float(-np.sum(np.log(eigenvalues + JACOB_COV_K) + 1.0 / (eigenvalues + JACOB_COV_K)))


def zen(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, generator: torch.Generator) -> float:
    """Zen-score of a Gaussian-initialised training-mode copy of `model` (weights drawn from `generator`)."""
    model = copy.deepcopy(model).train()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        for layer in weighted_layers(model):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
            if layer.bias is not None:
                layer.bias.zero_()
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                module.weight.fill_(1.0)
                module.bias.zero_()
    x = torch.randn((batch_size, *input_shape), generator=generator).to(device)
    mixed = x + ZEN_MIXUP * torch.randn((batch_size, *input_shape), generator=generator).to(device)
    features: list[torch.Tensor] = []
    variances: list[torch.Tensor] = []
    pools = [m for m in model.modules() if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool1d))]
    handles = [m.register_forward_hook(lambda _m, inputs, _o: variances.append(_channel_variance(inputs[0])))
               for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if pools:  # the feature map before the (last) global pooling, else the logits
        handles.append(pools[-1].register_forward_hook(lambda _m, inputs, _o: features.append(inputs[0])))
    try:
        with torch.no_grad():
            logits = model(x)
            bn_variances = list(variances)  # of the first pass only
            mixed_logits = model(mixed)
    finally:
        for handle in handles:
            handle.remove()
    first, second = features if pools else (logits, mixed_logits)
    delta = (first - second).abs().flatten(1).sum(1).mean()
    # a BN layer on a dead branch (an edge fed by a `none`-only node) sees a constant input and scales nothing
    return float(torch.log(delta / ZEN_MIXUP)) + sum(0.5 * float(torch.log(v)) for v in bn_variances if v > 0)


def _channel_variance(x: torch.Tensor) -> torch.Tensor:
    """The mean over channels of the batch variance of a BN layer's input."""
    return x.detach().transpose(0, 1).flatten(1).var(1, unbiased=False).mean()
