"""Building blocks of the mobile spaces: conv-BN-act, squeeze-and-excitation and the inverted residual.

Layer orders and channel rules follow MobileNetV2 (Sandler et al., 2018), MnasNet (Tan et al., 2019)
and MobileNetV3 (Howard et al., 2019), so a MobileNetV3-Large built from them has torchvision's
5,483,032 parameters.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from nasforge.errors import NasforgeError

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "hswish": nn.Hardswish}
GATES: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "hsigmoid": nn.Hardsigmoid}


def make_divisible(value: float, divisor: int = 8) -> int:
    """`value` rounded to the nearest multiple of `divisor`, never below `divisor` nor more than 10% down.

    The TensorFlow MobileNet rule: hardware kernels like channel counts that are multiples of 8.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _pick(table: dict[str, type[nn.Module]], name: str, field: str) -> nn.Module:
    if name not in table:
        raise NasforgeError(f"{field}: {name!r} is not allowed (allowed: {', '.join(table)})")
    return table[name]()


class ConvBNAct(nn.Sequential):
    """Conv(k, stride, groups, 'same' padding, no bias) -> BN -> activation (none when `act` is None)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: str | None = "relu") -> None:
        layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
        if act is not None:
            layers.append(_pick(ACTIVATIONS, act, "act"))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al., 2018): scale each channel by a gate computed from its global mean.

    The bottleneck has `make_divisible(ratio * channels)` channels; in an MBConv `channels` is the
    expanded width, as in MobileNetV3. Both 1x1 convs carry a bias; the gate is a sigmoid or
    MobileNetV3's cheaper hard sigmoid, relu6(x + 3) / 6.
    """

    def __init__(self, channels: int, ratio: float = 0.25, gate: str = "hsigmoid") -> None:
        super().__init__()
        if not 0 < ratio <= 1:
            raise NasforgeError(f"ratio: must be in (0, 1], got {ratio}")
        hidden = make_divisible(channels * ratio)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = _pick(GATES, gate, "gate")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(scale))))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk (stride) -> [SE] -> 1x1 linear project.

    The expansion conv is skipped when `expansion == 1`; otherwise the hidden width is
    `make_divisible(c_in * expansion)`. The identity shortcut is added only when the block keeps the
    shape (stride 1 and c_in == c_out), as in MobileNetV2.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, expansion: float = 6,
                 se: bool = False, act: str = "relu") -> None:
        super().__init__()
        if stride not in (1, 2):
            raise NasforgeError(f"stride: {stride!r} is not allowed (allowed: 1, 2)")
        if kernel < 1 or kernel % 2 == 0:
            raise NasforgeError(f"kernel: must be a positive odd number, got {kernel}")
        if expansion < 1:
            raise NasforgeError(f"expansion: must be >= 1, got {expansion}")
        hidden = c_in if expansion == 1 else make_divisible(c_in * expansion)
        layers: list[nn.Module] = [] if expansion == 1 else [ConvBNAct(c_in, hidden, 1, act=act)]
        layers.append(ConvBNAct(hidden, hidden, kernel, stride, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcite(hidden))
        layers.append(ConvBNAct(hidden, c_out, 1, act=None))  # linear bottleneck: no activation
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out
