"""Building blocks of the mobile and RegNet spaces: conv-BN-act, squeeze-and-excitation, the inverted
residual, the Ghost module and bottleneck, and the residual bottleneck of ResNeXt / RegNet.

Layer orders and channel rules follow MobileNetV2 (Sandler et al., 2018), MnasNet (Tan et al., 2019)
and MobileNetV3 (Howard et al., 2019), so a MobileNetV3-Large built from them has torchvision's
5,483,032 parameters; GhostNet (Han et al., 2020) and pycls's RegNet (Radosavovic et al., 2020) for
the others.
"""

from __future__ import annotations

import math

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

    The bottleneck has `make_divisible(ratio * channels)` channels unless `hidden` gives them (RegNetY
    sizes it from the block's input width, GhostNet rounds to multiples of 4); in an MBConv `channels`
    is the expanded width, as in MobileNetV3. Both 1x1 convs carry a bias; the gate is a sigmoid or
    MobileNetV3's cheaper hard sigmoid, relu6(x + 3) / 6.
    """

    def __init__(self, channels: int, ratio: float = 0.25, gate: str = "hsigmoid", hidden: int | None = None) -> None:
        super().__init__()
        if not 0 < ratio <= 1:
            raise NasforgeError(f"ratio: must be in (0, 1], got {ratio}")
        if hidden is not None and (type(hidden) is not int or hidden < 1):
            raise NasforgeError(f"hidden: must be a positive integer, got {hidden!r}")
        hidden = make_divisible(channels * ratio) if hidden is None else hidden
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


class GhostModule(nn.Module):
    """GhostNet's cheap replacement of a conv (Han et al., 2020): a primary conv makes
    ceil(c_out / ratio) channels, a depthwise `dw_kernel` conv makes (ratio - 1) "ghost" maps of each,
    and the first `c_out` of both are concatenated. Each part is conv -> BN -> `act` (none: None)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, ratio: int = 2, dw_kernel: int = 3, stride: int = 1,
                 act: str | None = "relu") -> None:
        super().__init__()
        if type(ratio) is not int or ratio < 2:
            raise NasforgeError(f"ratio: must be an integer >= 2, got {ratio!r}")
        primary = math.ceil(c_out / ratio)
        self.c_out = c_out
        self.primary = ConvBNAct(c_in, primary, kernel, stride, act=act)
        self.cheap = ConvBNAct(primary, primary * (ratio - 1), dw_kernel, 1, groups=primary, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], 1)[:, : self.c_out]


class GhostBottleneck(nn.Module):
    """GhostNet's bottleneck: Ghost module to `hidden` channels (with `act`) -> [depthwise kxk stride-2
    conv + BN when `stride` is 2] -> [SE, hard-sigmoid gate, bottleneck make_divisible(hidden / 4, 4)]
    -> Ghost module to `c_out` (no activation), plus the shortcut: identity when the shape is kept,
    else depthwise kxk (stride) + BN -> 1x1 conv + BN, as in the reference implementation."""

    def __init__(self, c_in: int, hidden: int, c_out: int, kernel: int = 3, stride: int = 1, se: bool = False,
                 act: str = "relu") -> None:
        super().__init__()
        if stride not in (1, 2):
            raise NasforgeError(f"stride: {stride!r} is not allowed (allowed: 1, 2)")
        if kernel < 1 or kernel % 2 == 0:
            raise NasforgeError(f"kernel: must be a positive odd number, got {kernel}")
        layers: list[nn.Module] = [GhostModule(c_in, hidden, act=act)]
        if stride == 2:
            layers.append(ConvBNAct(hidden, hidden, kernel, stride, groups=hidden, act=None))
        if se:
            layers.append(SqueezeExcite(hidden, hidden=make_divisible(hidden * 0.25, 4)))
        layers.append(GhostModule(hidden, c_out, act=None))
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            ConvBNAct(c_in, c_in, kernel, stride, groups=c_in, act=None), ConvBNAct(c_in, c_out, 1, act=None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class ResBottleneck(nn.Module):
    """The residual bottleneck block X of RegNet (Radosavovic et al., 2020; pycls's ResBottleneckBlock):
    1x1 conv to w_b = round(c_out / bottleneck) -> 3x3 group conv (stride, groups of `group_width`
    channels) -> [SE, sigmoid gate, round(se * c_in) hidden: block Y] -> 1x1 conv to c_out, each with
    BN and all but the last with ReLU; added to the input (through a strided 1x1 conv + BN when the
    shape changes) and passed through ReLU. `group_width` must divide w_b."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, bottleneck: float = 1.0, group_width: int = 1,
                 se: float = 0.0) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise NasforgeError(f"stride: {stride!r} is not allowed (allowed: 1, 2)")
        inner = int(round(c_out / bottleneck))
        if group_width < 1 or inner % group_width:
            raise NasforgeError(f"group_width: {group_width} does not divide the bottleneck width {inner}")
        if not 0 <= se < 1:
            raise NasforgeError(f"se: must be in [0, 1), got {se}")
        layers: list[nn.Module] = [ConvBNAct(c_in, inner, 1), ConvBNAct(inner, inner, 3, stride, groups=inner // group_width)]
        hidden = int(round(se * c_in))
        if hidden:
            layers.append(SqueezeExcite(inner, gate="sigmoid", hidden=hidden))
        layers.append(ConvBNAct(inner, c_out, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else ConvBNAct(c_in, c_out, 1, stride, act=None)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shortcut(x) + self.body(x))
