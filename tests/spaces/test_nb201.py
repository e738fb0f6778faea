"""NB201Space: the official arch strings, moves, encoding, errors, and the benchmark's networks."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.spaces import create_space
from nasforge.spaces.base import Arch
from nasforge.spaces.nb201 import EDGES, NB201_OPS, NB201Space, format_arch, parse_arch

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def uniform(op: str) -> str:
    return format_arch([op] * len(EDGES))


def edge_ops(space: NB201Space, arch: Arch) -> tuple[str, ...]:
    return tuple(NB201_OPS[d] for d in space.decisions(arch))


@pytest.fixture
def space() -> NB201Space:
    return NB201Space()


def test_choices_are_the_six_edges_over_the_five_ops_in_official_order(space):
    assert [c.name for c in space.choices] == ["edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2"]
    assert all(c.options == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3") for c in space.choices)
    assert space.size == 15625 == 5**6


def test_published_string_parses_edge_by_edge(space):
    assert parse_arch(BEST) == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    arch = space.validate(BEST)
    assert arch == Arch.of("nb201", BEST) and arch.key == BEST and arch.value == BEST


@pytest.mark.parametrize(("op", "edge"), itertools.product(NB201_OPS, range(len(EDGES))))
def test_every_op_on_every_edge_parses_and_prints_back(space, op, edge):
    ops = ["skip_connect"] * len(EDGES)
    ops[edge] = op
    text = format_arch(ops)
    target, source = EDGES[edge]
    assert f"{op}~{source}" in text.split("+")[target - 1]
    assert parse_arch(text) == tuple(ops)
    assert space.validate(text).key == text
    assert edge_ops(space, space.validate(text)) == tuple(ops)


def test_first_200_table_rows_validate_and_print_back_exactly(space, nb201_table):
    with nb201_table.open(newline="") as f:
        rows = list(itertools.islice(csv.DictReader(f), 200))
    assert len(rows) == 200
    for row in rows:
        arch = space.validate(row["arch"])
        assert arch.key == row["arch"] == format_arch(parse_arch(row["arch"]))
        assert space.decode(space.decisions(arch)) == arch


def test_sample_key_validate_is_the_identity(space):
    rng = np.random.default_rng(0)
    for _ in range(100):
        arch = space.sample(rng)
        assert space.validate(arch.key) == arch
        assert space.validate(arch.value) == arch


def test_same_seed_same_samples_other_seed_others(space):
    def draws(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        arch = space.sample(rng)
        keys = [arch.key]
        for _ in range(20):
            arch = space.mutate(arch, rng)
            keys += [arch.key, space.sample(rng).key]
        return keys

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


def test_samples_cover_all_ops_on_every_edge(space):
    rng = np.random.default_rng(1)
    seen = [set() for _ in EDGES]
    for _ in range(300):
        for k, op in enumerate(edge_ops(space, space.sample(rng))):
            seen[k].add(op)
    assert all(s == set(NB201_OPS) for s in seen)


def test_neighbors_are_the_24_single_edge_changes(space):
    arch = space.validate(BEST)
    neighbours = space.neighbors(arch)
    assert len(neighbours) == 24 == len({n.key for n in neighbours})
    for n in neighbours:
        changed = [a != b for a, b in zip(edge_ops(space, n), edge_ops(space, arch))]
        assert sum(changed) == 1


def test_mutate_changes_exactly_one_edge(space):
    rng = np.random.default_rng(2)
    arch = space.validate(BEST)
    for _ in range(200):
        child = space.mutate(arch, rng)
        assert sum(a != b for a, b in zip(edge_ops(space, child), edge_ops(space, arch))) == 1
        arch = child


def test_encode_is_a_30_long_one_hot_per_edge(space):
    arch = space.validate(BEST)
    vector = space.encode(arch)
    assert vector.shape == (30,) and vector.dtype == np.float32
    blocks = vector.reshape(len(EDGES), len(NB201_OPS))
    assert np.array_equal(blocks.sum(axis=1), np.ones(len(EDGES)))
    assert [NB201_OPS[i] for i in blocks.argmax(axis=1)] == list(parse_arch(BEST))


@pytest.mark.parametrize(("value", "message"), [
    ("|nor_conv_3x3~0|+|conv~0|none~1|+|none~0|none~1|none~2|",
     r"^arch: edge 2<-0 has op 'conv' \(allowed: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3\)$"),
    ("|nor_conv_3x3~0|+|none~0|none~1|", r"^arch: expected 3 node groups joined by '\+', got 2 in "),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", r"^arch: node 2 needs 2 edges \(from nodes 0\.\.1\), got 1 in "),
    ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", r"^arch: edge 2<-0 must be written 'op~0', got 'none~1'$"),
    ("|none~0|+|none~0|none~1|+|none~0|none1|none~2|", r"^arch: edge 3<-1 must be written 'op~1', got 'none1'$"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", r"^arch: node 1 must be written '\|op~source\|\.\.\.\|', got 'none~0\|'$"),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2| ", r"^arch: node 3 must be written "),
    ("", r"^arch: expected 3 node groups"),
    (["none"] * 6, r"^arch: expected a NAS-Bench-201 string like "),
    (None, r"^arch: expected a NAS-Bench-201 string like "),
])
def test_bad_strings_name_the_problem(space, value, message):
    with pytest.raises(NasforgeError, match=message):
        space.validate(value)


@pytest.mark.parametrize(("options", "message"), [
    ({"channels": 0}, r"^channels: expected a positive integer, got 0$"),
    ({"channels": 16.0}, r"^channels: expected a positive integer, got 16\.0$"),
    ({"cells_per_stage": -1}, r"^cells_per_stage: expected a positive integer, got -1$"),
    ({"cells_per_stage": True}, r"^cells_per_stage: expected a positive integer, got True$"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(NasforgeError, match=message):
        NB201Space(**options)


def test_registry_builds_the_space_with_options():
    space = create_space("nb201", channels=8, cells_per_stage=1)
    assert isinstance(space, NB201Space) and (space.channels, space.cells_per_stage) == (8, 1)
    with pytest.raises(NasforgeError, match="allowed options: channels, cells_per_stage"):
        create_space("nb201", layers=3)


def test_foreign_arch_and_bad_build_arguments_are_refused(space):
    with pytest.raises(NasforgeError, match=r"^arch: belongs to space 'darts', not 'nb201'$"):
        space.build(Arch.of("darts", BEST), (3, 32, 32), 10)
    arch = space.validate(BEST)
    with pytest.raises(NasforgeError, match=r"^input_shape: expected \(channels, height, width\)"):
        space.build(arch, (32, 32), 10)
    with pytest.raises(NasforgeError, match=r"^num_classes: expected a positive integer, got 0$"):
        space.build(arch, (3, 32, 32), 0)
    with pytest.raises(NasforgeError, match=r"^decisions: expected 6 indices, got 5$"):
        space.decode([0] * 5)


# NAS-Bench-201's parameter counts (its API's `params`, in millions: 1.531546 / 0.073306 on CIFAR-10,
# 1.537396 / 0.079156 on CIFAR-100) for C=16, N=5, 3x32x32. By hand, the all-conv count is
#   stem 3*16*9 + 32 = 464; cells 5 * 6 * (16*16*9 + 32) + 5 * 6 * (32*32*9 + 64) + 5 * 6 * (64*64*9 + 128)
#   = 1,458,240; reductions (4608 + 64 + 9216 + 64 + 512) + (18432 + 128 + 36864 + 128 + 2048) = 72,064;
#   last BN 128; linear 64 * 10 + 10 = 650  ->  1,531,546; without the cells (all none): 73,306.
@pytest.mark.parametrize(("op", "classes", "expected"), [
    ("nor_conv_3x3", 10, 1_531_546),
    ("none", 10, 73_306),
    ("nor_conv_3x3", 100, 1_537_396),
    ("none", 100, 79_156),
])
def test_parameter_counts_match_nas_bench_201(space, op, classes, expected):
    assert params(space.build(space.validate(uniform(op)), (3, 32, 32), classes)) == expected


def test_network_layout_is_the_reference_skeleton():
    space = NB201Space(channels=8, cells_per_stage=2)
    net = space.build(space.validate(BEST), (3, 32, 32), 10)
    kinds = [type(cell).__name__ for cell in net.cells]
    assert kinds == ["_Cell", "_Cell", "_ResidualReduction", "_Cell", "_Cell", "_ResidualReduction", "_Cell", "_Cell"]
    assert net.stem[0].in_channels == 3 and net.stem[0].out_channels == 8
    assert net.classifier.in_features == 32
    # nor_conv_1x1 cell: 6 * (c*c + 2c) per cell over c = 8, 16, 32 instead of the none cell's 0
    counts = {op: params(space.build(space.validate(uniform(op)), (3, 32, 32), 10)) for op in NB201_OPS}
    assert counts["skip_connect"] == counts["avg_pool_3x3"] == counts["none"]
    assert counts["nor_conv_1x1"] - counts["none"] == 2 * 6 * sum(c * c + 2 * c for c in (8, 16, 32))


@pytest.mark.parametrize("input_shape", [(3, 32, 32), (1, 8, 8), (3, 17, 23)])
def test_forward_and_backward_on_any_input_shape(input_shape):
    space = NB201Space(channels=4, cells_per_stage=1)
    classes = 7
    rng = np.random.default_rng(0)
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    for arch in [space.validate(BEST), space.validate(uniform("none")), space.sample(rng)]:
        net = space.build(arch, input_shape, classes)
        logits = net(x)
        assert logits.shape == (2, classes)
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
        assert net.classifier.bias.grad.abs().sum() > 0  # the all-none net's features are zeros: only the bias learns
        if arch.key == BEST:  # every edge of this cell leads to node 3: every weight learns
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def cell_of(arch_text: str, channels: int = 3) -> torch.nn.Module:
    space = NB201Space(channels=channels, cells_per_stage=1)
    return space.build(space.validate(arch_text), (3, 8, 8), 10).cells[0].eval()


def test_cell_sums_its_edges_by_hand():
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    # all skip: node1 = x, node2 = x + node1 = 2x, node3 = x + node1 + node2 = 4x
    assert torch.allclose(cell_of(uniform("skip_connect"))(x), 4 * x)
    # node 3 reads only node 0: the rest of the cell does not matter
    assert torch.equal(cell_of("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|")(x), x)
    # a node fed by none only is zeros of the input's shape, and so is what reads only it
    zeros = cell_of(uniform("none"))(x)
    assert zeros.shape == x.shape and not zeros.any()
    assert not cell_of("|none~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")(x).any()


def test_avg_pool_leaves_padding_out_of_the_average():
    ones = torch.ones(1, 3, 8, 8)
    # count_include_pad=False: corners average 4 ones, not 4 ones and 5 zeros
    pooled = cell_of("|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")(ones)
    assert torch.allclose(pooled, ones)


def test_skipping_none_edges_changes_no_output():
    """The cell leaves `none` edges out; summing every edge, as the reference cell does, gives the same."""
    space = NB201Space(channels=4, cells_per_stage=1)
    rng = np.random.default_rng(3)
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    for _ in range(20):
        cell = space.build(space.sample(rng), (3, 8, 8), 10).cells[0].eval()
        nodes = [x]
        for target in range(1, 4):
            nodes.append(sum(cell.edges[k](nodes[source]) for k, (t, source) in enumerate(EDGES) if t == target))
        assert torch.allclose(cell(x), nodes[3])


def _shared_weight_output(arch: Arch, x: torch.Tensor) -> torch.Tensor:
    """The cell's output with every conv of a kind holding the same weights: then cells computing the same
    function give the same numbers, whatever edges their ops sit on (BN normalising the batch, as in training)."""
    cell = cell_of(arch.key, channels=x.shape[1]).train()
    kernels = {k: torch.randn(x.shape[1], x.shape[1], k, k, generator=torch.Generator().manual_seed(k)) for k in (1, 3)}
    with torch.no_grad():
        for module in cell.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.copy_(kernels[module.kernel_size[0]])
        return cell(x)


def test_canonical_key_is_shared_exactly_by_cells_computing_the_same_function(space):
    x = torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(400)]
    # a few known equivalents: dead edges, and an identity moved along the path it sits on
    archs += [space.validate(t) for t in (
        "|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|",
        "|none~0|+|avg_pool_3x3~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
        "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|none~2|")]
    by_key: dict[str, list[torch.Tensor]] = {}
    for arch in archs:
        by_key.setdefault(space.canonical_key(arch), []).append(_shared_weight_output(arch, x))
    assert len(by_key["nor_conv_3x3(x)"]) >= 3
    assert sum(len(outputs) > 1 for outputs in by_key.values()) > 20  # random cells do share functions
    for outputs in by_key.values():  # one key, one function
        assert all(torch.allclose(out, outputs[0], atol=1e-3) for out in outputs)  # BN's eps aside
    firsts = [outputs[0] for outputs in by_key.values()]
    for i, a in enumerate(firsts):  # other keys, other functions
        assert not any(torch.allclose(a, b, atol=1e-3) for b in firsts[i + 1:])


def test_canonical_key_keeps_multiplicity_and_where_an_op_applies(space):
    def key(text: str) -> str:
        return space.canonical_key(space.validate(text))

    assert key(uniform("none")) == "0"
    # x + x is not x; conv(x + conv(x)) is not conv(x) + conv(conv(x))
    assert key("|skip_connect~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|") == "x+x"
    assert key("|nor_conv_3x3~0|+|skip_connect~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|") != \
        key("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|")
