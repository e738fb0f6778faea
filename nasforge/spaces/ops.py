"""Candidate operations shared by the cell spaces (NAS-Bench-201 and DARTS).

Shapes and layer orders follow the reference implementations: NAS-Bench-201's ReLU-Conv-BN ops
(Dong & Yang, 2020) and DARTS' separable / dilated convolutions (Liu et al., 2019).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv(k, stride, dilation) -> BN: the convolution of both cell spaces."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int = 1,
                 affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU -> depthwise dilated conv -> pointwise conv -> BN (DARTS' dil_conv)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked DilConv(dilation 1), the first carrying the stride (DARTS' sep_conv)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class AvgPool3x3(nn.Module):
    """3x3 average pooling, padding 1, padded positions not counted (`nn.AvgPool2d(3, stride, 1,
    count_include_pad=False)`), computed as a depthwise convolution with a kernel of ones divided by
    each position's count: the same numbers several times faster than PyTorch's CPU pooling kernel on
    NCHW tensors (which took most of an NB201 cell's forward time)."""

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        # a constant kernel, not made from the input's size: ONNX export with a dynamic batch then sees
        # a weight of known shape; not persistent, so state dicts are those of nn.AvgPool2d (empty)
        self.register_buffer("ones", torch.ones(channels, 1, 3, 3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        counts = nn.functional.conv2d(torch.ones_like(x[:1, :1]), self.ones[:1], stride=self.stride, padding=1)
        return nn.functional.conv2d(x, self.ones, stride=self.stride, padding=1, groups=x.shape[1]) / counts


class Zero(nn.Module):
    """The `none` op: zeros of the output shape (strided when the edge reduces)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        shape = (x.shape[0], self.c_out, x.shape[2], x.shape[3])
        return x.new_zeros(shape)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset 1x1 stride-2 convs, concatenated (skip on reducing edges)."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]  # offset by one pixel, as DARTS
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))
