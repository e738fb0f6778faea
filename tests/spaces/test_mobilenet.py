"""MobileNetSpace: distinct-architecture counting, uniform sampling, moves, encoding, errors and networks."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.spaces import create_space
from nasforge.spaces.base import Arch
from nasforge.spaces.mobilenet import MobileNetSpace


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def block(k: int, e: float, se: bool, act: str) -> dict:
    return {"k": k, "e": e, "se": se, "act": act}


def tiny(**overrides) -> MobileNetSpace:
    """Two stages of depth 1 or 2, kernel 3 or 5: 2 + 2**2 = 6 variants per stage, 36 networks."""
    options = dict(stem=8, widths=(8, 16), strides=(1, 2), depths=(1, 2), kernels=(3, 5), expansions=(3,),
                   se=(False,), acts=("relu",), width_mults=(1.0,), final=32, head=32)
    return MobileNetSpace(**{**options, **overrides})


def all_archs(space: MobileNetSpace) -> set[Arch]:
    """Every architecture, by decoding every decision vector (inactive decisions included)."""
    return {space.decode(d) for d in itertools.product(*(range(len(c.options)) for c in space.choices))}


@pytest.fixture(scope="module")
def space() -> MobileNetSpace:
    return MobileNetSpace()


@pytest.fixture(autouse=True)
def _private_torch_rng():
    """Module init draws from torch's global RNG: seed it inside a fork so the test leaves it untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


# MobileNetV3-Large (Howard et al., 2019, table 1) as an architecture of this space; torchvision's
# mobilenet_v3_large has 5,483,032 parameters (its model card).
V3_LARGE = {"width": 1.0, "stages": [
    [block(3, 4, False, "relu"), block(3, 3, False, "relu")],
    [block(5, 3, True, "relu")] * 3,
    [block(3, 6, False, "hswish"), block(3, 2.5, False, "hswish")] + [block(3, 2.3, False, "hswish")] * 2,
    [block(3, 6, True, "hswish")] * 2,
    [block(5, 6, True, "hswish")] * 3,
]}
V3_SPACE = MobileNetSpace(kernels=(3, 5), expansions=(2.3, 2.5, 3, 4, 6))


def test_size_counts_distinct_architectures() -> None:
    assert tiny().size == (2 + 2**2) ** 2 == len(all_archs(tiny())) == 36
    richer = tiny(se=(False, True), width_mults=(0.5, 1.0))  # 4 variants per block: 2 * (4 + 16)**2
    assert richer.size == 2 * (4 + 4**2) ** 2 == len(all_archs(richer)) == 800


def test_default_size(space: MobileNetSpace) -> None:
    per_block = 3 * 3 * 2 * 2  # kernel, expansion, SE, activation
    assert space.size == 3 * (per_block**2 + per_block**3 + per_block**4) ** 5
    assert len(space.choices) == 1 + 5 * (1 + 4 * 4)


def test_sample_is_uniform_over_distinct_architectures() -> None:
    space = tiny()
    rng = np.random.default_rng(0)
    counts = Counter(space.sample(rng) for _ in range(3600))
    assert set(counts) == all_archs(space)
    expected = 3600 / 36
    chi2 = sum((n - expected) ** 2 / expected for n in counts.values())
    assert chi2 < 66.6  # the 0.999 quantile of chi-square with 35 degrees of freedom
    # drawing each decision uniformly would give the 4 all-shallow networks 1/16 each, not 1/36
    shallow = sum(n for a, n in counts.items() if all(len(s) == 1 for s in a.value["stages"]))
    assert abs(shallow / 3600 - 4 / 36) < 0.02


def test_same_seed_same_samples(space: MobileNetSpace) -> None:
    def draw(seed: int) -> list[Arch]:
        rng = np.random.default_rng(seed)
        return [space.sample(rng) for _ in range(10)]

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_sample_validate_identity(space: MobileNetSpace) -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        arch = space.sample(rng)
        assert space.validate(json.loads(json.dumps(arch.value))) == arch
        assert space.decode(space.decisions(arch)) == arch


def test_json_form_holds_only_active_blocks(space: MobileNetSpace) -> None:
    stages = [[block(7, 6, True, "hswish")] * 2] + [[block(5, 4, True, "hswish")] * 3] * 4
    arch = space.validate({"width": 1.0, "stages": stages})
    assert arch.value["stages"] == stages
    d = space.decisions(arch)
    stage0 = d[1:18]  # depth, then 4 blocks of (k, e, se, act)
    assert stage0 == (0, 2, 2, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)  # blocks 2 and 3 inactive: 0


def test_mutate_changes_the_arch_by_one_move(space: MobileNetSpace) -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert child != arch and child.key != arch.key
        assert child in space.neighbors(arch)
        assert space.validate(child.value) == child


def test_neighbors_hand_count() -> None:
    space = tiny()
    for arch in all_archs(space):
        depths = [len(s) for s in arch.value["stages"]]
        found = space.neighbors(arch)
        # one depth move per stage, one kernel move per active block; inactive blocks move nothing
        assert len(found) == len({a.key for a in found}) == 2 + sum(depths)
        assert arch not in found


def test_neighbors_distinct(space: MobileNetSpace) -> None:
    arch = space.sample(np.random.default_rng(5))
    found = space.neighbors(arch)
    assert len({a.key for a in found}) == len(found) > 0
    assert arch.key not in {a.key for a in found}
    assert found == space.neighbors(arch)  # a fixed order


def test_encode_fixed_length(space: MobileNetSpace) -> None:
    length = 3 + 5 * (3 + 4 * (3 + 3 + 2 + 2))
    rng = np.random.default_rng(6)
    for _ in range(10):
        arch = space.sample(rng)
        vector = space.encode(arch)
        assert vector.shape == (length,) and vector.dtype == np.float32
        active_blocks = sum(len(s) for s in arch.value["stages"])
        assert vector.sum() == 1 + 5 + 4 * active_blocks  # inactive blocks encode as zeros


def test_encode_is_injective() -> None:
    space = tiny(se=(False, True))
    archs = all_archs(space)
    assert len({space.encode(a).tobytes() for a in archs}) == len(archs) == space.size


def _set(path: tuple, new):
    def change(value: dict) -> dict:
        node = value
        for step in path[:-1]:
            node = node[step]
        if new is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = new
        return value
    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda v: [], "arch: expected an object with keys width, stages, got []"),
        (_set(("stages",), KeyError), "arch.stages: missing"),
        (_set(("depth",), 3), "arch.depth: unknown field (allowed: width, stages)"),
        (_set(("width",), 0.5), "arch.width: 0.5 is not allowed (allowed: 0.75, 1.0, 1.25)"),
        (lambda v: {**v, "stages": v["stages"][:4]}, "arch.stages: expected a list of 5 stages"),
        (_set(("stages", 1), [block(3, 3, False, "relu")] * 5), "arch.stages[1]: 5 blocks is not allowed (allowed: 2, 3, 4)"),
        (_set(("stages", 2), "deep"), "arch.stages[2]: expected a list of blocks, got 'deep'"),
        (_set(("stages", 2, 1, "k"), 4), "arch.stages[2][1].k: 4 is not allowed (allowed: 3, 5, 7)"),
        (_set(("stages", 4, 2, "e"), 2.5), "arch.stages[4][2].e: 2.5 is not allowed (allowed: 3, 4, 6)"),
        (_set(("stages", 0, 0, "se"), 1), "arch.stages[0][0].se: 1 is not allowed (allowed: False, True)"),
        (_set(("stages", 0, 1, "act"), "gelu"), "arch.stages[0][1].act: 'gelu' is not allowed (allowed: relu, hswish)"),
        (_set(("stages", 3, 0, "e"), KeyError), "arch.stages[3][0].e: missing"),
        (_set(("stages", 3, 1, "d"), 2), "arch.stages[3][1].d: unknown field (allowed: k, e, se, act)"),
        (_set(("stages", 0, 0), "k3"), "arch.stages[0][0]: expected an object with keys k, e, se, act, got 'k3'"),
    ],
)
def test_validate_names_the_field(space: MobileNetSpace, change, message: str) -> None:
    value = {"width": 1.0, "stages": [[block(3, 3, False, "relu") for _ in range(3)] for _ in range(5)]}
    with pytest.raises(NasforgeError) as error:
        space.validate(change(value))
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_arch_of_another_space_is_refused(space: MobileNetSpace) -> None:
    other = Arch.of("nb201", "|nor_conv_3x3~0|")
    with pytest.raises(NasforgeError, match="belongs to space 'nb201'"):
        space.mutate(other, np.random.default_rng(0))


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(strides=(2, 2)), "strides: expected one per stage (5), got 2"),
        (dict(strides=(2, 2, 3, 1, 2)), "strides: 3 is not allowed (allowed: 1, 2)"),
        (dict(widths=()), "widths: expected a non-empty list"),
        (dict(depths=(0, 1)), "depths: 0 is not allowed (positive integers)"),
        (dict(kernels=(3, 4)), "kernels: 4 is not allowed (positive odd integers)"),
        (dict(kernels=(-1, 3)), "kernels: -1 is not allowed (positive odd integers)"),
        (dict(kernels=(3, 3)), "kernels: options must be distinct, got [3, 3]"),
        (dict(kernels=(True,)), "kernels: True is not allowed (positive odd integers)"),
        (dict(expansions=(0.5, 3)), "expansions: 0.5 is not allowed (numbers >= 1)"),
        (dict(se=(0, 1)), "se: 0 is not allowed (allowed: False, True)"),
        (dict(acts="relu"), "acts: expected a non-empty list"),
        (dict(acts=("relu", "gelu")), "acts: 'gelu' is not allowed (allowed: relu, hswish)"),
        (dict(width_mults=(1, 1.0)), "width_mults: options must be distinct"),
        (dict(stem=0), "stem: expected a positive integer, got 0"),
    ],
)
def test_bad_options(options: dict, message: str) -> None:
    with pytest.raises(NasforgeError) as error:
        MobileNetSpace(**options)
    assert str(error.value).startswith(message)


def test_registered() -> None:
    assert create_space("mobilenet", depths=(1, 2)).size == 3 * (36 + 36**2) ** 5
    with pytest.raises(NasforgeError, match="allowed options: stem, widths"):
        create_space("mobilenet", kernel=3)


def test_mobilenet_v3_large_params() -> None:
    model = V3_SPACE.build(V3_SPACE.validate(V3_LARGE), (3, 224, 224), 1000)
    assert n_params(model) == 5_483_032


def test_params_by_hand() -> None:
    space = tiny(se=(False, True), width_mults=(0.5, 1.0))
    stages = [[block(3, 3, False, "relu")], [block(5, 3, True, "relu")]]
    stem = 1 * 8 * 9 + 16
    first = 8 * 9 + 16 + 8 * 8 + 16  # MBConv(8, 8, e=1): depthwise + project
    stage0 = 8 * 24 + 48 + 24 * 9 + 48 + 24 * 8 + 16  # MBConv(8, 8, k3, e3)
    se = 24 * 8 + 8 + 8 * 24 + 24  # SE on 24 channels, bottleneck 6 -> 8
    # width 1.0: stage 1 is MBConv(8, 16, k5, e3, SE), then conv 16->32, linear 32->32, linear 32->10
    stage1 = 8 * 24 + 48 + 24 * 25 + 48 + se  # expand and depthwise of MBConv(8, c, k5, e3, SE)
    full = stem + first + stage0 + stage1 + (24 * 16 + 32) + (16 * 32 + 64) + (32 * 32 + 32) + (32 * 10 + 10)
    # width 0.5: every width rounds to 8, final 32 -> 16, the head stays 32 (never narrowed)
    half = stem + first + stage0 + stage1 + (24 * 8 + 16) + (8 * 16 + 32) + (16 * 32 + 32) + (32 * 10 + 10)
    for width, expected in [(1.0, full), (0.5, half)]:
        model = space.build(space.validate({"width": width, "stages": stages}), (1, 8, 8), 10)
        assert n_params(model) == expected
    assert (full, half) == (4650, 3514)


def test_total_stride_is_32(space: MobileNetSpace) -> None:
    arch = space.sample(np.random.default_rng(7))
    features = space.build(arch, (3, 64, 64), 10)[:-5]  # up to the final 1x1 conv, before pooling
    with torch.no_grad():
        assert features.eval()(torch.randn(1, 3, 64, 64)).shape[2:] == (2, 2)


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 32, 32)])
def test_build_forward_backward(space: MobileNetSpace, input_shape: tuple) -> None:
    rng = np.random.default_rng(8)
    for model in [space.build(space.sample(rng), input_shape, 10), V3_SPACE.build(V3_SPACE.validate(V3_LARGE), input_shape, 10)]:
        logits = model(torch.randn(2, *input_shape))
        assert logits.shape == (2, 10)
        nn.functional.cross_entropy(logits, torch.tensor([1, 7])).backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(
    "input_shape, num_classes, message",
    [((8, 8), 10, "input_shape: expected (C, H, W)"), ((1, 0, 8), 10, "input_shape"), ((1, 8, 8), 0, "num_classes")],
)
def test_build_bad_arguments(space: MobileNetSpace, input_shape: tuple, num_classes: int, message: str) -> None:
    with pytest.raises(NasforgeError) as error:
        space.build(space.sample(np.random.default_rng(0)), input_shape, num_classes)
    assert str(error.value).startswith(message)


def test_ghost_blocks_are_an_extra_choice() -> None:
    plain, ghost = tiny(), tiny(blocks=("mbconv", "ghost"))
    assert plain.size == 36 and ghost.size == (4 + 4**2) ** 2 == len(all_archs(ghost))  # 2 x 2 variants per block
    assert all("block" not in b for s in plain.sample(np.random.default_rng(0)).value["stages"] for b in s)
    arch = ghost.validate({"width": 1.0, "stages": [[block(3, 3, False, "relu") | {"block": "ghost"}],
                                                    [block(5, 3, False, "relu") | {"block": "mbconv"}]]})
    with_mbconv = plain.validate({"width": 1.0, "stages": [[block(3, 3, False, "relu")], [block(5, 3, False, "relu")]]})
    # the ghost bottleneck of 8 -> 8 channels, hidden 24: ghost 8 -> 24 (8*12 + 24 + 12*9 + 24), ghost 24 -> 8
    # (24*4 + 8 + 4*9 + 8), identity shortcut; it replaces MBConv(8, 8, k3, e3): 8*24 + 48 + 24*9 + 48 + 24*8 + 16
    difference = (252 + 148) - (192 + 48 + 216 + 48 + 192 + 16)
    assert n_params(ghost.build(arch, (1, 8, 8), 10)) - n_params(plain.build(with_mbconv, (1, 8, 8), 10)) == difference
    with pytest.raises(NasforgeError, match=r"arch.stages\[0\]\[0\].block: missing"):
        ghost.validate({"width": 1.0, "stages": [[block(3, 3, False, "relu")], [block(5, 3, False, "relu")]]})
    with pytest.raises(NasforgeError, match="blocks: 'fused' is not allowed"):
        tiny(blocks=("fused",))


def test_scale_deepens_and_widens() -> None:
    space = tiny()
    arch = space.validate({"width": 1.0, "stages": [[block(3, 3, False, "relu")], [block(5, 3, False, "relu")] * 2]})
    options, scaled = space.scale(arch, 1.5, 1.25)
    # depths 1, 2 -> ceil(1.5), ceil(3): the added blocks repeat the stage's last one
    assert scaled.value == {"width": 1.25, "stages": [[block(3, 3, False, "relu")] * 2, [block(5, 3, False, "relu")] * 3]}
    assert options["depths"] == [2, 3] and options["width_mults"] == [1.25]
    assert create_space("mobilenet", **options).validate(scaled.value) == scaled
