"""RegNet and AnyNetX spaces: the published RegNetX/Y-400MF configurations, the width rule and its fit,
pycls's compatibility rule, the AnyNetX constraint levels, and their errors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from nasforge.cli import main
from nasforge.errors import NasforgeError
from nasforge.hardware.counting import count_macs, count_params
from nasforge.spaces import create_space
from nasforge.spaces.anynet import Stage, compatible, non_decreasing
from nasforge.spaces.regnet import fit_regnet, regnet_widths

X400 = {"d": 22, "w0": 24, "wa": 24.48, "wm": 2.54, "g": 16, "b": 1, "se": 0}
Y400 = {"d": 16, "w0": 48, "wa": 27.89, "wm": 2.09, "g": 8, "b": 1, "se": 0.25}


@pytest.fixture(autouse=True)
def _private_torch_rng():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


@pytest.mark.parametrize("value, depths, widths, params", [
    # stage depths/widths: the paper's Table / pycls's configs; params: pycls's model (5,157,512 and 4,344,144,
    # the 5.2 M and 4.3 M of its model zoo)
    (X400, [1, 2, 7, 12], [32, 64, 160, 384], 5_157_512),
    (Y400, [1, 3, 6, 6], [48, 104, 208, 440], 4_344_144),
])
def test_published_400mf_models(value, depths, widths, params):
    space = create_space("regnet")
    arch = space.validate(value)
    stages = [compatible(s) for s in space.stage_list(arch)]
    assert [s.depth for s in stages] == depths and [s.width for s in stages] == widths
    model = space.build(arch, (3, 224, 224), 1000)
    assert count_params(model) == params
    # pycls's "flops" are multiply-adds (0.40 GF for both): count_macs is that convention, within 1.5 %
    assert count_macs(model, (3, 224, 224)) == pytest.approx(400e6, rel=0.015)


def test_width_rule_by_hand():
    # u = 24 + 24.48 j; j = 1: log(48.48 / 24) / log(2.54) = 0.75 -> s = 1 -> 24 * 2.54 = 60.96 -> 64 (8 | 64)
    widths = regnet_widths(22, 24, 24.48, 2.54)
    assert widths[:2] == [24, 64] and len(widths) == 22
    # 24 -> 32, 152 -> 160 and 392 -> 384 (24.5 groups of 16, half to even) come from the group width 16
    assert Counter(widths) == {24: 1, 64: 2, 152: 7, 392: 12}
    assert regnet_widths(4, 16, 0.0, 2.0) == [16, 16, 16, 16]  # wa = 0: one stage


@pytest.mark.parametrize("value", [X400, Y400])
def test_fit_reproduces_the_widths(value):
    widths = regnet_widths(value["d"], value["w0"], value["wa"], value["wm"])
    fit = fit_regnet(widths)
    assert fit.error == 0 and regnet_widths(value["d"], fit.w0, fit.wa, fit.wm) == widths


def test_fit_of_widths_off_the_rule():
    fit = fit_regnet([32, 16, 48])  # the rule's widths never decrease
    assert 0 < fit.error < 0.5
    with pytest.raises(NasforgeError, match="widths: expected a non-empty list"):
        fit_regnet([])


@pytest.mark.parametrize("stage, width, group", [
    (Stage(1, 24, 1, 16), 32, 16),  # 24 / 16 = 1.5 rounds (half to even) to 2 groups of 16
    (Stage(1, 152, 1, 16), 160, 16),
    (Stage(1, 8, 4, 16), 8, 2),  # inner width 2 caps the group width
    (Stage(1, 48, 2, 8), 48, 8),  # inner 24 = 3 groups of 8: unchanged
])
def test_compatible(stage, width, group):
    assert (compatible(stage).width, compatible(stage).group_width) == (width, group)


def test_canonical_key_joins_archs_that_build_the_same_network():
    space = create_space("regnet")
    a, b = space.validate(X400), space.validate(X400 | {"wa": 24.5})
    assert a != b and space.canonical_key(a) == space.canonical_key(b)
    assert space.canonical_key(space.validate(X400 | {"g": 8})) != space.canonical_key(a)


@pytest.mark.parametrize("value, message", [
    (X400 | {"wm": 1}, "arch.wm: expected a number > 1, got 1"),
    (X400 | {"w0": 0}, "arch.w0: expected a positive integer, got 0"),
    (X400 | {"se": 1.5}, "arch.se: expected a number in [0, 1), 0 for none, got 1.5"),
    (X400 | {"depth": 3}, "arch.depth: unknown field (allowed: d, w0, wa, wm, g, b, se)"),
    ({k: v for k, v in X400.items() if k != "g"}, "arch.g: missing"),
    (X400 | {"wa": 200, "wm": 1.5}, "arch: gives 9 stages (allowed: at most max_stages = 4)"),
])
def test_regnet_errors(value, message):
    with pytest.raises(NasforgeError) as error:
        create_space("regnet").validate(value)
    assert str(error.value) == message


def test_regnet_samples_stay_in_ranges_and_in_four_stages():
    space = create_space("regnet", se=(0.25,))
    rng = np.random.default_rng(0)
    for _ in range(50):
        value = space.sample(rng).value
        assert 4 <= value["d"] <= 16 and 8 <= value["w0"] <= 32 and value["w0"] % 8 == 0
        assert 4 <= value["wa"] <= 32 and 1.5 <= value["wm"] <= 3 and value["se"] == 0.25
        assert len(space.stage_list(space.validate(value))) <= 4


def test_describe_regnetx_400mf(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["describe", "--space", "regnet", "--arch", json.dumps(X400), "--input-shape", "3,224,224",
              "--num-classes", "1000"])
    assert exit_info.value.code == 0
    info = json.loads(capsys.readouterr().out)
    # nasforge's `flops` counts 2 per multiply-add: twice pycls's 0.40 G multiply-adds
    assert info["params"] == 5_157_512 and info["flops"] == pytest.approx(800e6, rel=0.015)


A_ARCH = {"stages": [{"d": 2, "w": 64, "b": 1, "g": 8}, {"d": 1, "w": 32, "b": 2, "g": 4},
                     {"d": 3, "w": 128, "b": 1, "g": 8}, {"d": 1, "w": 128, "b": 1, "g": 8}]}


@pytest.mark.parametrize("level, message", [
    ("b", "arch.stages[*].b: [1, 2, 1, 1] breaks the rule of anynet_b: one b shared by all stages"),
    ("c", "arch.stages[*].b: [1, 2, 1, 1] breaks the rule of anynet_c: one b shared by all stages"),
])
def test_anynet_levels_refuse_what_they_constrain(level, message):
    assert create_space("anynet_a").validate(A_ARCH)
    with pytest.raises(NasforgeError) as error:
        create_space(f"anynet_{level}").validate(A_ARCH)
    assert str(error.value) == message


def test_anynet_each_level_a_subset_of_the_previous():
    names = [f"anynet_{level}" for level in "abcde"]
    spaces = [create_space(n) for n in names]
    sizes = [s.size for s in spaces]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 5
    # 4 stages, 4 depths, 16 widths, 3 b, 5 g: A = (4*16*3*5)^4, E = 3 * 5 * C(7, 4) * C(19, 4)
    assert sizes[0] == (4 * 16 * 3 * 5) ** 4 and sizes[-1] == 3 * 5 * 35 * 3876
    rng = np.random.default_rng(0)
    for i, space in enumerate(spaces):
        for _ in range(20):
            arch = space.sample(rng)
            for looser in spaces[: i + 1]:
                looser.validate(arch.value)  # an arch of a level is an arch of every looser level
            stages = arch.value["stages"]
            if i >= 3:
                assert [s["w"] for s in stages] == sorted(s["w"] for s in stages)
            if i == 4:
                assert [s["d"] for s in stages] == sorted(s["d"] for s in stages)
            for child in [space.mutate(arch, rng)] + space.neighbors(arch):
                space.validate(child.value)
    with pytest.raises(NasforgeError, match="non-decreasing depths"):
        spaces[-1].validate({"stages": [{"d": 2, "w": 8, "b": 1, "g": 1}, {"d": 1, "w": 8, "b": 1, "g": 1}] * 2})


def test_non_decreasing_sequences_are_uniform():
    rng = np.random.default_rng(0)
    counts = Counter(tuple(non_decreasing(rng, 3, 2)) for _ in range(6000))
    assert set(counts) == {(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)}  # the C(4, 2) = 6 multisets
    assert all(abs(c - 1000) < 120 for c in counts.values())  # uniform (sorting iid draws would halve (i, i))


def test_widths_never_round_to_zero_channels():
    # u = 3, 7, 11, 15 -> s = 0, 1, 2, 2 -> 3, 6, 12, 12 channels -> 0, 1, 2, 2 quanta: the first lifted to 1
    assert regnet_widths(4, 3, 4.0, 2.0) == [8, 8, 16, 16]
