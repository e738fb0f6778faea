"""The three benchmark networks written directly in plain PyTorch, the way one writes a single known
network by hand: the baseline of `throughput.py`.

Written from the papers, not from nasforge (nothing here imports it), so that the throughput
comparison measures nasforge's overhead against a hand-written twin:

- `nb201_net`: NAS-Bench-201's TinyNetwork (Dong & Yang, 2020, Sec. 2.1 and Fig. 1).
- `darts_net`: DARTS' CIFAR evaluation network (Liu et al., 2019, Sec. 3 and App. A.2), no auxiliary tower.
- `mobilenet_net`: a MobileNetV3 chain of inverted residuals (Sandler et al., 2018; Howard et al., 2019)
  with the per-block kernel / expansion / SE / activation that MnasNet- and OFA-style spaces search.

Each takes the architecture in its published form (the NB201 string, the DARTS genotype lists, the
stage/block description) and registers its parameters in the order the papers list the layers,
which is also nasforge's order, so `copy_weights` can move weights between the two by position.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["copy_weights", "darts_net", "mobilenet_net", "nb201_net"]


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Load `source`'s parameters and buffers into `target`, matched by position and shape (names differ)."""
    src, dst = list(source.state_dict().values()), target.state_dict()
    if len(src) != len(dst):
        raise ValueError(f"state_dict: {len(src)} tensors in the source, {len(dst)} in the target")
    for (name, value), other in zip(dst.items(), src):
        if value.shape != other.shape:
            raise ValueError(f"state_dict: {name} has shape {tuple(value.shape)}, the source's tensor {tuple(other.shape)}")
    target.load_state_dict(dict(zip(dst, src)))


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1) -> list[nn.Module]:
    padding = dilation * (kernel - 1) // 2
    return [nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation, groups, bias=False), nn.BatchNorm2d(c_out)]


# ---------------------------------------------------------------- NAS-Bench-201


class _NB201Cell(nn.Module):
    """Node j = sum of op(node i) over its edges i < j; the cell outputs node 3. A hand-written cell
    simply has no `none` edges; a node with none left is zero."""

    def __init__(self, arch: str, c: int) -> None:
        super().__init__()
        self.sources: list[list[int]] = []  # per node 1..3, the source of each edge kept
        edges = []
        for group in arch.split("+"):
            kept = []
            for edge in group.strip("|").split("|"):
                op, source = edge.split("~")
                if op == "none":
                    continue
                kept.append(int(source))
                if op == "nor_conv_1x1":
                    edges.append(nn.Sequential(*_relu_conv_bn(c, c, 1)))
                elif op == "nor_conv_3x3":
                    edges.append(nn.Sequential(*_relu_conv_bn(c, c, 3)))
                elif op == "avg_pool_3x3":
                    edges.append(nn.AvgPool2d(3, 1, 1, count_include_pad=False))
                else:  # skip_connect
                    edges.append(nn.Identity())
            self.sources.append(kept)
        self.edges = nn.ModuleList(edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes, k = [x], 0
        for sources in self.sources:
            if not sources:
                nodes.append(torch.zeros_like(x))
                continue
            total = self.edges[k](nodes[sources[0]])
            for source in sources[1:]:
                k += 1
                total = total + self.edges[k](nodes[source])
            k += 1
            nodes.append(total)
        return nodes[-1]


class _ResNetBlock(nn.Module):
    """The stride-2 residual block between stages: two ReLU-Conv3x3-BN, shortcut 2x2 avg pool + 1x1 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(*_relu_conv_bn(c_in, c_out, 3, stride=2))
        self.conv_b = nn.Sequential(*_relu_conv_bn(c_out, c_out, 3))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


def nb201_net(arch: str, channels: int = 16, cells: int = 5, in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    """TinyNetwork: stem, 3 stages of `cells` cells (C, 2C, 4C) joined by residual blocks, BN-ReLU, pool, linear."""
    c = channels
    layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)]
    for stage in range(3):
        if stage:
            layers.append(_ResNetBlock(c, 2 * c))
            c *= 2
        layers += [_NB201Cell(arch, c) for _ in range(cells)]
    layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- DARTS


class _FactorizedReduce(nn.Module):
    """Halve the resolution: two 1x1 stride-2 convs, the second on the input shifted by one pixel."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(x[:, :, 1:, 1:])], 1))  # even sizes only


def _darts_op(op: str, c: int, stride: int) -> nn.Module:
    if op == "sep_conv_3x3" or op == "sep_conv_5x5":
        k = int(op[-1])
        return nn.Sequential(*_relu_conv_bn(c, c, k, stride, groups=c)[:2], nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c),
                             *_relu_conv_bn(c, c, k, groups=c)[:2], nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))
    if op == "dil_conv_3x3" or op == "dil_conv_5x5":
        k = int(op[-1])
        return nn.Sequential(*_relu_conv_bn(c, c, k, stride, dilation=2, groups=c)[:2], nn.Conv2d(c, c, 1, bias=False),
                             nn.BatchNorm2d(c))
    if op == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else _FactorizedReduce(c, c)
    raise ValueError(f"op: {op!r} is not a DARTS evaluation op")


class _DartsCell(nn.Module):
    def __init__(self, pairs: list, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.pre0 = _FactorizedReduce(c_pp, c) if reduction_prev else nn.Sequential(*_relu_conv_bn(c_pp, c, 1))
        self.pre1 = nn.Sequential(*_relu_conv_bn(c_p, c, 1))
        self.inputs = [i for _, i in pairs]
        self.ops = nn.ModuleList(_darts_op(op, c, 2 if reduction and i < 2 else 1) for op, i in pairs)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for k in range(0, 8, 2):
            states.append(self.ops[k](states[self.inputs[k]]) + self.ops[k + 1](states[self.inputs[k + 1]]))
        return torch.cat(states[2:], 1)


class _DartsNetwork(nn.Module):
    def __init__(self, genotype: dict, channels: int, cells: int, in_channels: int, num_classes: int) -> None:
        super().__init__()
        c = 3 * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        c_pp, c_p, c = c, c, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(cells):
            reduction = i in (cells // 3, 2 * cells // 3)
            c = 2 * c if reduction else c
            pairs = genotype["reduce" if reduction else "normal"]
            self.cells.append(_DartsCell(pairs, c_pp, c_p, c, reduction, reduction_prev))
            c_pp, c_p, reduction_prev = c_p, 4 * c, reduction
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(s1.mean((2, 3)))


def darts_net(genotype: dict, channels: int = 16, cells: int = 8, in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    """NetworkCIFAR for a genotype ({"normal": 8 [op, input] pairs, "reduce": ...}), 4 nodes per cell,
    a 3C stem, reduction cells at 1/3 and 2/3 of the depth, global pool, linear."""
    return _DartsNetwork(genotype, channels, cells, in_channels, num_classes)


# ---------------------------------------------------------------- MobileNetV3 chain


def _round8(value: float) -> int:
    """The MobileNet channel rule: nearest multiple of 8, at least 8, never more than 10% below `value`."""
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * value else rounded


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: str | None = None) -> list[nn.Module]:
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    if act:
        layers.append(nn.Hardswish() if act == "hswish" else nn.ReLU())
    return layers


class _SE(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, _round8(c / 4), 1), nn.ReLU(),
                                nn.Conv2d(_round8(c / 4), c, 1), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class _InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int, e: float, se: bool, act: str) -> None:
        super().__init__()
        hidden = c_in if e == 1 else _round8(c_in * e)
        layers = [] if e == 1 else _conv_bn(c_in, hidden, 1, act=act)
        layers += _conv_bn(hidden, hidden, k, stride, groups=hidden, act=act)
        layers += [_SE(hidden)] if se else []
        layers += _conv_bn(hidden, c_out, 1)
        self.block = nn.Sequential(*layers)
        self.shortcut = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.shortcut else self.block(x)


def mobilenet_net(arch: dict, in_channels: int = 3, num_classes: int = 10, stem: int = 16,
                  widths: tuple[int, ...] = (24, 40, 80, 112, 160), strides: tuple[int, ...] = (2, 2, 2, 1, 2),
                  final: int = 960, head: int = 1280) -> nn.Module:
    """MobileNetV3 skeleton for {"width": multiplier, "stages": [[{"k", "e", "se", "act"}, ...], ...]}:
    3x3/2 hswish stem, a k3 e1 block, the stages (first block strided), 1x1 conv, pool, hswish head, linear."""
    w = arch["width"]
    c = _round8(stem * w)
    layers: list[nn.Module] = [*_conv_bn(in_channels, c, 3, 2, act="hswish"), _InvertedResidual(c, c, 3, 1, 1, False, "relu")]
    for width, stride, blocks in zip(widths, strides, arch["stages"]):
        for i, b in enumerate(blocks):
            layers.append(_InvertedResidual(c, _round8(width * w), b["k"], stride if i == 0 else 1, b["e"], b["se"], b["act"]))
            c = _round8(width * w)
    c_final, c_head = _round8(final * w), _round8(head * max(w, 1.0))
    layers += [*_conv_bn(c, c_final, 1, act="hswish"), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(c_final, c_head), nn.Hardswish(), nn.Linear(c_head, num_classes)]
    return nn.Sequential(*layers)
