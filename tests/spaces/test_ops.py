"""Shared candidate ops against PyTorch's own layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from nasforge.spaces.ops import AvgPool3x3


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 5, 9, 11), (1, 1, 1, 1)])
@pytest.mark.parametrize("stride", [1, 2])
def test_avg_pool_equals_torch_pooling_without_padded_positions(shape, stride):
    x = torch.randn(shape, requires_grad=True)
    ours, reference = AvgPool3x3(x.shape[1], stride)(x), nn.AvgPool2d(3, stride, 1, count_include_pad=False)(x)
    assert ours.shape == reference.shape and torch.allclose(ours, reference, atol=1e-6)
    g = torch.randn_like(ours)
    assert torch.allclose(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(reference, x, g)[0], atol=1e-6)
