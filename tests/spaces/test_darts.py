"""The DARTS cell space: published genotypes, parameter counts against the reference code, decisions."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.spaces.darts import DARTS_OPS, GENOTYPES, DartsSpace


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def genotype(normal_op: str, reduce_op: str, *, normal_first: str | None = None, reduce_first: str | None = None) -> dict:
    """Every edge `normal_op` / `reduce_op`, node k reading states k and k + 1; optionally pair 0 replaced."""
    normal = [[normal_op, k // 2 + k % 2] for k in range(8)]
    reduce = [[reduce_op, k // 2 + k % 2] for k in range(8)]
    if normal_first:
        normal[0][0] = normal_first
    if reduce_first:
        reduce[0][0] = reduce_first
    return {"normal": normal, "normal_concat": [2, 3, 4, 5], "reduce": reduce, "reduce_concat": [2, 3, 4, 5]}


# Golden counts of DARTS' NetworkCIFAR (C=36, 20 cells, 10 classes):
# - DARTS_V2 3,349,342: quark0/darts cnn/train.py logs `param size = 3.349342MB` (count_parameters_in_MB,
#   which leaves the auxiliary head out) for its default --arch DARTS (= DARTS_V2); the paper says 3.3M.
# - P-DARTS 3,433,798 without / 3,910,224 with the auxiliary tower: counted with the P-DARTS repository's
#   model.py in chenxin061/pdarts issue #7 (the paper says 3.4M).
@pytest.mark.parametrize(("name", "auxiliary", "expected"), [
    ("DARTS_V2", False, 3_349_342),
    ("PDARTS", False, 3_433_798),
    ("PDARTS", True, 3_910_224),
])
def test_parameter_count_matches_reference_implementation(name, auxiliary, expected):
    space = DartsSpace(channels=36, cells=20, auxiliary=auxiliary)
    assert params(space.build(space.validate(GENOTYPES[name]), (3, 32, 32), 10)) == expected


def test_pc_darts_parameter_count_matches_paper():
    space = DartsSpace(channels=36, cells=20)
    count = params(space.build(space.validate(GENOTYPES["PC_DARTS"]), (3, 32, 32), 10))
    assert abs(count - 3.6e6) <= 0.05e6  # PC-DARTS (Xu et al., 2020), Table 1: 3.6M, one decimal


# channels=4, cells=3 (reductions at cells 1 and 2), stem 3*4=12 channels, 3 input channels, 10 classes.
# With parameter-free ops (max pool) only the skeleton counts:
#   stem conv 3*12*9 + BN 2*12                                   = 348
#   cell 0 (normal, C=4):  ReLUConvBN 12->4 twice: 2 * (48 + 8)  = 112
#   cell 1 (reduce, C=8):  ReLUConvBN 12->8 (96+16), 16->8 (128+16) = 256
#   cell 2 (reduce, C=16): FactorizedReduce 16->16 (2*16*8 + 32), ReLUConvBN 32->16 (512 + 32) = 832
#   classifier 64*10 + 10                                        = 650
SKELETON = 348 + 112 + 256 + 832 + 650  # 2198


@pytest.mark.parametrize(("arch", "extra"), [
    (genotype("max_pool_3x3", "max_pool_3x3"), 0),
    (genotype("avg_pool_3x3", "none"), 0),
    # sep_conv_3x3 at C=4: two (depthwise 4*9 + pointwise 4*4 + BN 2*4)
    (genotype("max_pool_3x3", "max_pool_3x3", normal_first="sep_conv_3x3"), 2 * (36 + 16 + 8)),
    # dil_conv_5x5 at C=4: depthwise 4*25 + pointwise 4*4 + BN 2*4
    (genotype("max_pool_3x3", "max_pool_3x3", normal_first="dil_conv_5x5"), 100 + 16 + 8),
    # skip on a stride-2 edge of the reduction cells (C=8, C=16): FactorizedReduce 2*C*C/2 + 2*C
    (genotype("max_pool_3x3", "max_pool_3x3", reduce_first="skip_connect"), (64 + 16) + (256 + 32)),
    # skip between nodes (stride 1) is the identity
    (genotype("skip_connect", "max_pool_3x3"), 0),
])
def test_parameter_count_by_hand(arch, extra):
    space = DartsSpace(channels=4, cells=3)
    assert params(space.build(space.validate(arch), (3, 32, 32), 10)) == SKELETON + extra


def test_reduction_cells_halve_resolution_and_double_channels():
    space = DartsSpace(channels=4, cells=3)
    net = space.build(space.validate(GENOTYPES["DARTS_V2"]), (3, 32, 32), 10)
    shapes = []
    for cell in net.cells:
        cell.register_forward_hook(lambda module, inputs, output: shapes.append(tuple(output.shape[1:])))
    net.eval()
    with torch.no_grad():
        net(torch.zeros(2, 3, 32, 32))
    assert shapes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_published_genotypes_round_trip_through_json(name):
    space = DartsSpace()
    arch = space.validate(json.loads(json.dumps(GENOTYPES[name])))
    assert arch.value == GENOTYPES[name]  # pair order kept as published
    assert space.validate(arch.value) == arch
    assert json.loads(arch.key) == GENOTYPES[name]


def test_darts_v1_json_form_and_key():
    arch = DartsSpace().validate(GENOTYPES["DARTS_V1"])
    assert arch.value["normal"][:2] == [["sep_conv_3x3", 1], ["sep_conv_3x3", 0]]
    assert arch.key.startswith('{"normal":[["sep_conv_3x3",1],["sep_conv_3x3",0],["skip_connect",0]')


def test_validate_accepts_python_genotype_containers_and_same_input_twice():
    cells = [("sep_conv_3x3", 0), ("sep_conv_3x3", 0)] * 4  # node reads state 0 twice
    arch = DartsSpace().validate({"normal": cells, "normal_concat": range(2, 6), "reduce": cells, "reduce_concat": (2, 3, 4, 5)})
    assert arch.value["normal"][1] == ["sep_conv_3x3", 0]
    assert arch.value["reduce_concat"] == [2, 3, 4, 5]


def _broken(path: tuple, replacement) -> dict:
    value = json.loads(json.dumps(GENOTYPES["DARTS_V2"]))
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = replacement
    return value


@pytest.mark.parametrize(("value", "message"), [
    ("sep_conv_3x3", r"^arch: expected an object with keys normal, normal_concat, reduce, reduce_concat, got"),
    (_broken(("normal", 3, 0), "conv_7x1_1x7"),
     r"^arch\.normal\[3\]: op 'conv_7x1_1x7' is not allowed \(allowed: none, max_pool_3x3, avg_pool_3x3, skip_connect, "
     r"sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5\)$"),
    (_broken(("reduce", 2, 1), 4), r"^arch\.reduce\[2\]: input 4 is not allowed for node 1 \(allowed: 0, 1, 2;"),
    (_broken(("normal", 0, 1), -1), r"^arch\.normal\[0\]: input -1 is not allowed for node 0 \(allowed: 0, 1;"),
    (_broken(("normal", 0, 1), "0"), r"^arch\.normal\[0\]: input '0' is not allowed"),
    (_broken(("normal", 0, 1), True), r"^arch\.normal\[0\]: input True is not allowed"),
    (_broken(("normal", 5), ["skip_connect"]), r"^arch\.normal\[5\]: expected an \[op, input\] pair"),
    (_broken(("reduce",), GENOTYPES["DARTS_V2"]["reduce"][:6]), r"^arch\.reduce: expected 8 \[op, input\] pairs \(2 per node\), got 6 items$"),
    (_broken(("normal_concat",), [2, 3, 4, 5, 6]), r"^arch\.normal_concat: must be \[2, 3, 4, 5\]"),
    (_broken(("reduce_concat",), [4, 5]), r"^arch\.reduce_concat: must be \[2, 3, 4, 5\]"),
    (_broken(("genotype",), 1), r"^arch\.genotype: unknown field \(allowed: normal, normal_concat, reduce, reduce_concat\)$"),
    ({k: v for k, v in GENOTYPES["DARTS_V2"].items() if k != "reduce"}, r"^arch\.reduce: missing$"),
])
def test_validate_names_the_bad_field(value, message):
    with pytest.raises(NasforgeError, match=message) as error:
        DartsSpace().validate(value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"channels": 0}, r"^channels: expected a positive integer, got 0$"),
    ({"cells": 2.5}, r"^cells: expected a positive integer, got 2\.5$"),
    ({"stem_multiplier": True}, r"^stem_multiplier: expected a positive integer, got True$"),
    ({"auxiliary": "yes"}, r"^auxiliary: expected true or false, got 'yes'$"),
])
def test_constructor_validates_options(options, message):
    with pytest.raises(NasforgeError, match=message):
        DartsSpace(**options)


def test_size_counts_distinct_unordered_input_pairs():
    # per cell: node i picks 2 of i+2 states (1 * 3 * 6 * 10 = 180 ways) and one of 8 ops per edge (8^8)
    assert DartsSpace().size == (180 * 8**8) ** 2 == 9_119_789_245_425_254_400


def test_samples_validate_to_themselves_with_distinct_ascending_inputs():
    space = DartsSpace()
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = space.sample(rng)
        assert space.validate(arch.value) == arch
        for cell in ("normal", "reduce"):
            pairs = arch.value[cell]
            assert all(pairs[2 * n][1] < pairs[2 * n + 1][1] for n in range(4))


def test_sampling_reaches_every_input_pair_and_op():
    space = DartsSpace()
    rng = np.random.default_rng(1)
    samples = [space.sample(rng).value for _ in range(200)]
    for cell in ("normal", "reduce"):
        for node in range(4):
            pairs = {(s[cell][2 * node][1], s[cell][2 * node + 1][1]) for s in samples}
            assert pairs == set(itertools.combinations(range(node + 2), 2))
        for k in range(8):
            assert {s[cell][k][0] for s in samples} == set(DARTS_OPS)


def test_same_seed_same_samples_other_seed_others():
    space = DartsSpace()

    def draw(seed):
        rng = np.random.default_rng(seed)
        return [space.sample(rng).key for _ in range(5)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_mutate_changes_exactly_one_decision():
    space = DartsSpace()
    rng = np.random.default_rng(2)
    arch = space.validate(GENOTYPES["DARTS_V2"])
    for _ in range(50):
        child = space.mutate(arch, rng)
        before, after = space.decisions(arch), space.decisions(child)
        assert sum(a != b for a, b in zip(before, after)) == 1
        assert space.validate(child.value) == child
        arch = child


def test_neighbors_are_distinct_valid_one_decision_away():
    space = DartsSpace()
    arch = space.validate(GENOTYPES["DARTS_V1"])
    neighbors = space.neighbors(arch)
    # per cell: 8 edges * 7 other ops + inputs (node i has i+1 others, two edges each): 56 + 2*(1+2+3+4)
    assert len(neighbors) == 2 * (56 + 20)
    assert len({n.key for n in neighbors} | {arch.key}) == len(neighbors) + 1
    for n in neighbors:
        assert space.validate(n.value) == n
        assert sum(a != b for a, b in zip(space.decisions(arch), space.decisions(n))) == 1


def test_encode_is_fixed_length_one_hot():
    space = DartsSpace()
    rng = np.random.default_rng(3)
    for arch in [space.validate(GENOTYPES["PDARTS"])] + [space.sample(rng) for _ in range(5)]:
        code = space.encode(arch)
        # per cell: 8 edges * 8 ops + inputs 2 * (2 + 3 + 4 + 5); 32 decisions, one 1 each
        assert code.shape == (2 * (64 + 28),)
        assert code.sum() == 32
    assert space.decisions(space.validate(GENOTYPES["DARTS_V2"]))[:4] == (DARTS_OPS.index("sep_conv_3x3"), 0, 4, 1)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 8, 8)])
def test_build_forward_backward(shape):
    space = DartsSpace(channels=4, cells=5)
    net = space.build(space.sample(np.random.default_rng(4)), shape, 10)
    x = torch.randn(3, *shape)
    out = net(x)
    assert out.shape == (3, 10)
    out.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_auxiliary_tower():
    space = DartsSpace(channels=4, cells=5, auxiliary=True)
    arch = space.validate(GENOTYPES["DARTS_V2"])
    net = space.build(arch, (3, 32, 32), 7)
    x = torch.randn(2, 3, 32, 32)
    logits, aux = net.forward_with_aux(x)
    assert logits.shape == aux.shape == (2, 7)
    assert net(x).shape == (2, 7)
    net.eval()
    assert net.forward_with_aux(x)[1] is None
    with pytest.raises(NasforgeError, match=r"^auxiliary: the tower needs an 8x8 map"):
        space.build(arch, (1, 8, 8), 10)


@pytest.mark.parametrize(("shape", "classes", "message"), [
    ((32, 32), 10, r"^input_shape: expected \(channels, height, width\)"),
    ((3, 0, 32), 10, r"^input_shape: expected"),
    ((3, 32, 32), 0, r"^num_classes: expected a positive integer, got 0$"),
])
def test_build_validates_shape_and_classes(shape, classes, message):
    space = DartsSpace(channels=4, cells=3)
    with pytest.raises(NasforgeError, match=message):
        space.build(space.validate(GENOTYPES["DARTS_V2"]), shape, classes)


def test_arch_of_another_space_is_refused():
    from nasforge.spaces.base import Arch

    foreign = Arch.of("nb201", GENOTYPES["DARTS_V2"])
    with pytest.raises(NasforgeError, match=r"^arch: belongs to space 'nb201', not 'darts'$"):
        DartsSpace().build(foreign, (3, 32, 32), 10)


def test_canonical_key_ignores_the_order_of_a_nodes_two_pairs_and_what_none_reads():
    space = DartsSpace()
    darts_v2 = GENOTYPES["DARTS_V2"]
    swapped = json.loads(json.dumps(darts_v2))
    for cell in ("normal", "reduce"):
        pairs = swapped[cell]
        swapped[cell] = [pair for node in range(4) for pair in (pairs[2 * node + 1], pairs[2 * node])]
    a, b = space.validate(darts_v2), space.validate(swapped)
    assert a.key != b.key and space.canonical_key(a) == space.canonical_key(b)
    other = json.loads(json.dumps(darts_v2))
    other["normal"][0][0] = "dil_conv_5x5" if other["normal"][0][0] != "dil_conv_5x5" else "sep_conv_5x5"
    assert space.canonical_key(space.validate(other)) != space.canonical_key(a)
    rng = np.random.default_rng(0)
    keys = {space.canonical_key(space.sample(rng)) for _ in range(200)}
    assert len(keys) == 200  # sampling lists inputs in order: distinct samples stay distinct
