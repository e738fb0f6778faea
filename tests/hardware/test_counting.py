"""Parameter, FLOP and MAC counts: hand computations on single layers, NAS-Bench-201's own figures."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.hardware.counting import count_flops, count_macs, count_params
from nasforge.spaces.nb201 import NB201Space, format_arch


def test_linear_by_hand():
    layer = nn.Linear(5, 3)
    assert count_params(layer) == 5 * 3 + 3
    assert count_flops(layer, (5,)) == 2 * 5 * 3  # PyTorch: 2 per multiply-add, bias not counted
    assert count_macs(layer, (5,)) == 5 * 3 + 3  # 15 multiply-adds + 3 bias adds
    assert count_macs(nn.Linear(5, 3, bias=False), (5,)) == 15


def test_conv_by_hand():
    # 3 -> 8 channels, 3x3, stride 2, padding 1 on 9x9: output 8 x 5 x 5 = 200 values of 3*3*3 = 27 products
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    assert count_params(conv) == 3 * 8 * 9 + 8
    assert count_flops(conv, (3, 9, 9)) == 2 * 200 * 27
    assert count_macs(conv, (3, 9, 9)) == 200 * 27 + 200
    # groups=2: each of the 8 x 4 x 4 outputs sums 2 input channels x 9 taps
    grouped = nn.Conv2d(4, 8, 3, groups=2, bias=False)
    assert count_params(grouped) == 8 * 2 * 9
    assert count_flops(grouped, (4, 6, 6)) == 2 * 128 * 18
    assert count_macs(grouped, (4, 6, 6)) == 128 * 18


def test_bn_pool_and_activations_count_nothing_but_their_parameters():
    model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2), nn.ReLU(), nn.AvgPool2d(2), nn.MaxPool2d(2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert count_params(model) == 2 + 4  # conv weights, BN weight and bias (running stats are buffers)
    assert count_flops(model, (1, 8, 8)) == 2 * 2 * 64
    assert count_macs(model, (1, 8, 8)) == 2 * 64


def test_frozen_and_shared_parameters():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(4, 2))
    model[3].weight.requires_grad_(False)
    assert count_params(model) == 20 + 2  # the shared layer once, the frozen weight not at all
    assert count_macs(model, (4,)) == 2 * 20 + (8 + 2)  # but the shared layer runs twice


def test_counting_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    model.train()
    model[2].eval()  # a mixed state must come back as it was, module by module
    state = {k: v.clone() for k, v in model.state_dict().items()}
    count_flops(model, (3, 8, 8))
    count_macs(model, (3, 8, 8))
    assert [m.training for m in model.modules()] == [True, True, True, False, True, True]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # BN statistics untouched
    assert not any(m._forward_hooks for m in model.modules())  # count_macs removed its hooks


@pytest.mark.parametrize("shape", [(3, 0, 8), (3, 8.0, 8), "3,8,8", None])
def test_bad_input_shape_is_refused(shape):
    with pytest.raises(NasforgeError, match=r"^input_shape: expected a tuple of positive integers"):
        count_flops(nn.Linear(3, 3), shape)


# NAS-Bench-201's `flops` figures (millions, 5 decimals in its API; the smallest and largest of the
# space, also quoted rounded as 220.12 M / 7.78 M) for C=16, N=5: all nor_conv_3x3 and all none.
# `count_macs` is their convention; by hand, the 32x32 all-conv cell network has
#   stem 32*32*27*16 = 442,368; 90 cell convs of 2,359,296 each = 212,336,640;
#   reduction blocks 2 x (1,179,648 + 2,359,296 + 131,072) = 7,340,032 (their 2x2 pools are not counted);
#   linear 64 * 10 + 10 = 650  ->  220,119,690.
# `count_flops` doubles the multiply-adds and leaves biases out: 2 * (220,119,690 - 10) = 440,239,360.
NB201_FLOPS_M = [
    ("nor_conv_3x3", (3, 32, 32), 10, 220.11969),  # CIFAR-10
    ("none", (3, 32, 32), 10, 7.78305),
    ("nor_conv_3x3", (3, 32, 32), 100, 220.12554),  # CIFAR-100
    ("none", (3, 32, 32), 100, 7.78890),
    ("nor_conv_3x3", (3, 16, 16), 120, 55.03756),  # ImageNet16-120
    ("none", (3, 16, 16), 120, 1.95340),
]


@pytest.mark.parametrize(("op", "shape", "classes", "expected_m"), NB201_FLOPS_M)
def test_macs_match_nas_bench_201(op, shape, classes, expected_m):
    space = NB201Space()
    net = space.build(space.validate(format_arch([op] * 6)), shape, classes)
    macs = count_macs(net, shape)
    assert abs(macs / 1e6 - expected_m) <= 0.5e-5  # the table's last decimal
    assert count_flops(net, shape) == 2 * (macs - classes)  # the only bias is the classifier's


def test_both_conventions_by_hand_for_the_largest_cell():
    space = NB201Space()
    net = space.build(space.validate(format_arch(["nor_conv_3x3"] * 6)), (3, 32, 32), 10)
    assert count_macs(net, (3, 32, 32)) == 220_119_690
    assert count_flops(net, (3, 32, 32)) == 440_239_360
    assert count_params(net) == 1_531_546
