"""Parameter and operation counts of a built network, for one image (batch 1, one forward pass).

Two conventions are in use, and papers mix them:

- `count_flops` — nasforge's `flops` metric: what PyTorch's `torch.utils.flop_counter.FlopCounterMode`
  counts, 2 FLOPs per multiply-add of convolutions and matrix products (linear layers); biases, BN,
  pooling and activations count nothing.
- `count_macs` — multiply-accumulates of Conv1d/2d/3d and Linear layers, plus one per output element
  for a bias; nothing else. This is NAS-Bench-201's `flops` column (its `get_model_infos`, in
  millions: the reference counter also hooks pooling layers but leaves them out of its sum) and
  the "multiply-adds" of most NAS papers.

For NAS-Bench-201's all-nor_conv_3x3 cell (C=16, N=5, 3x32x32 input, 10 classes):
count_macs = 220,119,690 (the benchmark's 220.11969 M) and count_flops = 440,239,360 =
2 x (220,119,040 conv MACs + 640 linear MACs); the all-none cell gives 7,783,050 (7.78305 M) and 15,566,080.

Both run the model once in eval mode without gradients on a zero input, and leave its training
flags and BN statistics as they were.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from nasforge.errors import NasforgeError

__all__ = ["count_flops", "count_macs", "count_params"]

_MAC_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def count_params(model: nn.Module) -> int:
    """The number of trainable parameters (shared tensors once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of a (1, *input_shape) input as `FlopCounterMode` counts them
    (2 per multiply-add of conv / linear / matmul)."""
    counter = FlopCounterMode(display=False)
    _forward_once(model, input_shape, counter)
    return int(counter.get_total_flops())


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of the conv and linear layers (+1 per output of a bias) in one forward
    pass of a (1, *input_shape) input: NAS-Bench-201's `flops` convention."""
    total = 0

    def hook(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Linear):
            per_output = layer.in_features
        else:  # each output element sums (in_channels / groups) x kernel products
            per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        total += output.numel() * (per_output + (layer.bias is not None))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _MAC_LAYERS)]
    try:
        _forward_once(model, input_shape)
    finally:
        for handle in handles:
            handle.remove()
    return total


def _forward_once(model: nn.Module, input_shape: tuple[int, ...],
                  context: AbstractContextManager = nullcontext()) -> None:
    """Run `model` on zeros of shape (1, *input_shape) in eval mode, without gradients, inside `context`;
    restore every module's training flag afterwards."""
    if not isinstance(input_shape, (tuple, list)) or any(type(n) is not int or n < 1 for n in input_shape):
        raise NasforgeError(f"input_shape: expected a tuple of positive integers (no batch), got {input_shape!r}")
    reference = next(iter(model.parameters()), None)
    x = torch.zeros((1, *input_shape), device=reference.device if reference is not None else None,
                    dtype=reference.dtype if reference is not None and reference.is_floating_point() else None)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()  # no BN statistics update, no dropout
    try:
        with torch.no_grad(), context:
            model(x)
    finally:
        for module, training in modes:
            module.training = training
