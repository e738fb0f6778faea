"""Mobile blocks: channel rounding, parameter counts worked out by hand, the SE gate and the shortcut."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.spaces.blocks import GhostBottleneck, GhostModule, MBConv, ResBottleneck, SqueezeExcite, make_divisible


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def _private_torch_rng():
    """Module init draws from torch's global RNG: seed it inside a fork so the test leaves it untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


@pytest.mark.parametrize(
    "value, divisor, expected",
    [
        (16, 8, 16),
        (20, 8, 24),  # halfway rounds up
        (30, 8, 32),
        (12, 8, 16),
        (4, 8, 8),  # never below the divisor
        (18, 8, 24),  # 16 would be 11% below 18: one divisor more
        (10, 8, 16),  # 8 would be 20% below 10
        (183.99999999999997, 8, 184),  # 80 * 2.3 in floating point
        (10, 4, 12),
    ],
)
def test_make_divisible(value: float, divisor: int, expected: int) -> None:
    assert make_divisible(value, divisor) == expected


@pytest.mark.parametrize(
    "channels, expected",
    [
        (64, 64 * 16 + 16 + 16 * 64 + 64),  # bottleneck 0.25 * 64 = 16
        (72, 72 * 24 + 24 + 24 * 72 + 72),  # 0.25 * 72 = 18 -> 24 (MobileNetV3's 72-channel SE)
        (960, 960 * 240 + 240 + 240 * 960 + 960),
    ],
)
def test_squeeze_excite_params(channels: int, expected: int) -> None:
    assert n_params(SqueezeExcite(channels)) == expected


@pytest.mark.parametrize("gate, reference", [("sigmoid", torch.sigmoid), ("hsigmoid", lambda b: ((b + 3) / 6).clamp(0, 1))])
def test_squeeze_excite_gate(gate: str, reference) -> None:
    se = SqueezeExcite(4, gate=gate)
    bias = torch.tensor([-4.0, -1.0, 0.0, 2.0])
    with torch.no_grad():  # zero weights: the gate sees only the expand bias
        for p in se.parameters():
            p.zero_()
        se.expand.bias.copy_(bias)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(se(x), x * reference(bias).view(1, 4, 1, 1))


def test_squeeze_excite_scales_each_channel_uniformly() -> None:
    se = SqueezeExcite(16)
    x = torch.rand(3, 16, 6, 6) + 0.5
    ratio = se(x) / x
    torch.testing.assert_close(ratio, ratio[:, :, :1, :1].expand_as(ratio))
    assert not torch.allclose(ratio[0], ratio[1])  # the gate depends on the input's channel means


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # expand 16*64 + BN 2*64, depthwise 64*3*3 + BN 2*64, project 64*24 + BN 2*24
        (dict(c_in=16, c_out=24, kernel=3, stride=2, expansion=4), 1024 + 128 + 576 + 128 + 1536 + 48),
        # the same block with SE on its 64 expanded channels: 64*16 + 16 + 16*64 + 64 more
        (dict(c_in=16, c_out=24, kernel=3, stride=2, expansion=4, se=True), 3440 + 2128),
        # expansion 1 (MobileNetV3's first block): no expand conv; depthwise 16*9 + 32, project 16*16 + 32
        (dict(c_in=16, c_out=16, kernel=3, stride=1, expansion=1), 144 + 32 + 256 + 32),
        # expansion 2.5 of 40 = 100 -> 104 channels; 5x5 depthwise
        (dict(c_in=40, c_out=80, kernel=5, stride=1, expansion=2.5), 40 * 104 + 208 + 104 * 25 + 208 + 104 * 80 + 160),
    ],
)
def test_mbconv_params(kwargs: dict, expected: int) -> None:
    assert n_params(MBConv(**kwargs)) == expected


@pytest.mark.parametrize(
    "c_in, c_out, stride, residual",
    [(16, 16, 1, True), (16, 24, 1, False), (16, 16, 2, False), (24, 16, 2, False)],
)
def test_mbconv_residual_only_when_shape_is_kept(c_in: int, c_out: int, stride: int, residual: bool) -> None:
    block = MBConv(c_in, c_out, 3, stride, expansion=3, se=True)
    assert block.residual is residual
    project_bn = block.body[-1][1]
    with torch.no_grad():  # the body now outputs zeros: what is left is the shortcut
        project_bn.weight.zero_()
        project_bn.bias.zero_()
    x = torch.randn(2, c_in, 6, 6)
    out = block(x)
    assert out.shape == (2, c_out, 6 // stride, 6 // stride)
    torch.testing.assert_close(out, x if residual else torch.zeros_like(out))


@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("size", [1, 7, 8])
def test_mbconv_shapes(kernel: int, size: int) -> None:
    x = torch.randn(2, 8, size, size)
    assert MBConv(8, 8, kernel, 1, expansion=6)(x).shape == x.shape
    half = (size + 1) // 2  # 'same' padding with stride 2 rounds up
    assert MBConv(8, 16, kernel, 2, expansion=6)(x).shape == (2, 16, half, half)


def test_mbconv_activation() -> None:
    def kinds(block: nn.Module) -> list[type]:
        return [type(m) for m in block.body.modules() if isinstance(m, (nn.ReLU, nn.Hardswish))]

    # expand and depthwise each end in the activation; SE keeps its own ReLU; the projection has none
    assert kinds(MBConv(8, 8, act="hswish")) == [nn.Hardswish, nn.Hardswish]
    assert kinds(MBConv(8, 8, act="hswish", se=True)) == [nn.Hardswish, nn.Hardswish, nn.ReLU]
    assert kinds(MBConv(8, 8, act="relu", expansion=1)) == [nn.ReLU]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MBConv(8, 8, stride=3), "stride: 3 is not allowed (allowed: 1, 2)"),
        (lambda: MBConv(8, 8, kernel=4), "kernel: must be a positive odd number, got 4"),
        (lambda: MBConv(8, 8, expansion=0.5), "expansion: must be >= 1, got 0.5"),
        (lambda: MBConv(8, 8, act="gelu"), "act: 'gelu' is not allowed (allowed: relu, hswish)"),
        (lambda: SqueezeExcite(8, gate="tanh"), "gate: 'tanh' is not allowed (allowed: sigmoid, hsigmoid)"),
        (lambda: SqueezeExcite(8, ratio=0), "ratio: must be in (0, 1], got 0"),
    ],
)
def test_bad_arguments(make, message: str) -> None:
    with pytest.raises(NasforgeError) as error:
        make()
    assert str(error.value) == message


def test_squeeze_excite_explicit_hidden() -> None:
    assert n_params(SqueezeExcite(64, hidden=8)) == 64 * 8 + 8 + 8 * 64 + 64  # RegNetY: round(0.25 * w_in)


@pytest.mark.parametrize(
    "c_in, c_out, expected",
    [
        # primary 1x1 16 -> 16 (ceil(32 / 2)) + BN 32, cheap depthwise 3x3 on 16 + BN 32
        (16, 32, 256 + 32 + 144 + 32),
        # odd output: primary ceil(15 / 2) = 8 channels, 16 ghosts of which the first 15 are kept
        (16, 15, 128 + 16 + 72 + 16),
    ],
)
def test_ghost_module_params_and_shape(c_in: int, c_out: int, expected: int) -> None:
    module = GhostModule(c_in, c_out)
    assert n_params(module) == expected
    assert module(torch.randn(2, c_in, 7, 7)).shape == (2, c_out, 7, 7)


def test_ghost_module_ghosts_are_depthwise_maps_of_the_primary() -> None:
    module = GhostModule(4, 8, act=None).eval()
    x = torch.randn(1, 4, 5, 5)
    out = module(x)
    torch.testing.assert_close(out[:, :4], module.primary(x))
    torch.testing.assert_close(out[:, 4:], module.cheap(module.primary(x)))


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # ghost1 16 -> 48: 16*24 + 48 + 24*9 + 48; stride-2 depthwise 48*9 + 96; SE(48, 12): 48*12 + 12 + 12*48 + 48;
        # ghost2 48 -> 24: 48*12 + 24 + 12*9 + 24; shortcut: depthwise 16*9 + 32, 1x1 16*24 + 48
        (dict(c_in=16, hidden=48, c_out=24, stride=2, se=True), 696 + 528 + 1212 + 732 + 608),
        # shape kept: identity shortcut; ghost1 16 -> 32: 256 + 32 + 144 + 32; ghost2 32 -> 16: 32*8 + 16 + 8*9 + 16
        (dict(c_in=16, hidden=32, c_out=16), 464 + 360),
    ],
)
def test_ghost_bottleneck_params(kwargs: dict, expected: int) -> None:
    block = GhostBottleneck(**kwargs)
    assert n_params(block) == expected
    x = torch.randn(2, kwargs["c_in"], 8, 8)
    stride = kwargs.get("stride", 1)
    assert block(x).shape == (2, kwargs["c_out"], 8 // stride, 8 // stride)


def test_ghost_bottleneck_identity_shortcut() -> None:
    block = GhostBottleneck(8, 16, 8)
    with torch.no_grad():  # the last BN outputs zeros: what is left is the shortcut
        for bn in (block.body[-1].primary[1], block.body[-1].cheap[1]):
            bn.weight.zero_()
            bn.bias.zero_()
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # 1x1 32 -> 64 + BN, 3x3 groups of 16 (4 groups): 64 * 16 * 9 + BN, 1x1 64 -> 64 + BN, shortcut 1x1 32 -> 64 + BN
        (dict(c_in=32, c_out=64, stride=2, group_width=16), 2048 + 128 + 9216 + 128 + 4096 + 128 + 2048 + 128),
        # RegNetY: SE on the 64 inner channels with round(0.25 * 32) = 8 hidden
        (dict(c_in=32, c_out=64, stride=2, group_width=16, se=0.25), 17920 + 1096),
        # bottleneck ratio 2: inner 32 (2 groups of 16)
        (dict(c_in=32, c_out=64, stride=2, bottleneck=2, group_width=16), 1024 + 64 + 4608 + 64 + 2048 + 128 + 2048 + 128),
    ],
)
def test_res_bottleneck_params(kwargs: dict, expected: int) -> None:
    block = ResBottleneck(**kwargs)
    assert n_params(block) == expected
    assert block(torch.randn(2, 32, 8, 8)).shape == (2, 64, 4, 4)


def test_res_bottleneck_identity_shortcut_and_errors() -> None:
    block = ResBottleneck(16, 16, group_width=4)
    with torch.no_grad():
        block.body[-1][1].weight.zero_()
        block.body[-1][1].bias.zero_()
    x = torch.randn(2, 16, 4, 4)
    torch.testing.assert_close(block(x), torch.relu(x))
    with pytest.raises(NasforgeError, match="group_width: 5 does not divide the bottleneck width 16"):
        ResBottleneck(16, 16, group_width=5)


def test_ghost_blocks_in_a_user_defined_space() -> None:
    """The guide's example: a space of one's own built from Ghost bottlenecks passes the conformance checks."""
    from nasforge import define_space
    from nasforge.spaces.blocks import ConvBNAct
    from nasforge.testing import check_space

    def build(cfg, input_shape, num_classes):
        return nn.Sequential(ConvBNAct(input_shape[0], 16, 3, 2),
                             GhostBottleneck(16, 16 * cfg["e"], cfg["width"], kernel=3, stride=2, se=cfg["se"]),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cfg["width"], num_classes))

    check_space(define_space("ghostnet_tiny", {"e": [2, 3], "se": [False, True], "width": [16, 24, 32]}, build))
