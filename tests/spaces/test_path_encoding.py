"""The path encoding of BANANAS (White et al., 2021) on NB201 and DARTS, against hand-counted paths."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.spaces.base import PathEncodable, path_feature
from nasforge.spaces.darts import GENOTYPES, PATH_BLOCK, DartsSpace
from nasforge.spaces.nb201 import NB201Space, format_arch


def features(code: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(code)]


@pytest.fixture(scope="module")
def nb201() -> NB201Space:
    return NB201Space()


@pytest.fixture(scope="module")
def darts() -> DartsSpace:
    return DartsSpace()


def test_path_feature_orders_paths_by_length_then_lexicographically():
    # 4 ops: paths of 1 op are features 0-3, of 2 ops 4-19, of 3 ops 20-83
    assert [path_feature([op], 4) for op in range(4)] == [0, 1, 2, 3]
    assert path_feature([0, 0], 4) == 4 and path_feature([3, 3], 4) == 19
    assert path_feature([0, 0, 0], 4) == 20 and path_feature([3, 3, 3], 4) == 83
    assert path_feature([1, 0, 2], 4) == 20 + 16 + 2


def test_the_built_in_cell_spaces_are_path_encodable(nb201, darts, grid_space):
    assert isinstance(nb201, PathEncodable) and isinstance(darts, PathEncodable)
    assert not isinstance(grid_space, PathEncodable)


# NB201 path ops (without `none`): skip_connect 0, nor_conv_1x1 1, nor_conv_3x3 2, avg_pool_3x3 3;
# the cell's routes from input to output: 0-3 (1 op), 0-1-3 and 0-2-3 (2 ops), 0-1-2-3 (3 ops).
@pytest.mark.parametrize(("ops", "expected"), [
    (["none"] * 6, []),  # no live path at all
    (["skip_connect"] * 6, [0, 4, 20]),  # skip; skip-skip (both 2-op routes, one feature); skip-skip-skip
    (["nor_conv_3x3"] * 6, [2, 4 + 2 * 4 + 2, 20 + 2 * 16 + 2 * 4 + 2]),
    # edges (1,0) (2,0) (2,1) (3,0) (3,1) (3,2): only 0-3 and 0-1-3 live
    (["nor_conv_1x1", "none", "none", "avg_pool_3x3", "skip_connect", "none"], [3, 4 + 1 * 4 + 0]),
    # the output reads node 2 only, node 2 reads node 0 only: a single 2-op path
    (["nor_conv_3x3", "avg_pool_3x3", "none", "none", "none", "skip_connect"], [4 + 3 * 4 + 0]),
])
def test_nb201_golden_paths(nb201, ops, expected):
    code = nb201.path_encode(nb201.validate(format_arch(ops)))
    assert code.shape == (84,) and code.dtype == np.float32
    assert features(code) == expected
    assert set(np.unique(code)) <= {0.0, 1.0}


def test_nb201_dead_edges_do_not_change_the_encoding(nb201):
    # node 1 feeds nothing (edges 2<-1 and 3<-1 are none): whatever edge 1<-0 does is invisible
    first = nb201.validate(format_arch(["nor_conv_3x3", "skip_connect", "none", "nor_conv_1x1", "none", "avg_pool_3x3"]))
    second = nb201.validate(format_arch(["avg_pool_3x3", "skip_connect", "none", "nor_conv_1x1", "none", "avg_pool_3x3"]))
    assert first != second
    np.testing.assert_array_equal(nb201.path_encode(first), nb201.path_encode(second))


def test_nb201_encoding_has_one_length(nb201):
    rng = np.random.default_rng(0)
    assert {nb201.path_encode(nb201.sample(rng)).shape for _ in range(50)} == {(84,)}


def test_darts_length_is_four_blocks_of_paths_up_to_three_ops(darts):
    assert PATH_BLOCK == 7 + 7**2 + 7**3
    rng = np.random.default_rng(0)
    assert {darts.path_encode(darts.sample(rng)).shape for _ in range(20)} == {(4 * PATH_BLOCK,)}


def test_darts_v2_golden_paths(darts):
    # path ops (without none): max_pool 0, avg_pool 1, skip 2, sep3 3, sep5 4, dil3 5, dil5 6; blocks of
    # 399: normal/input 0, normal/input 1, reduce/input 0, reduce/input 1.
    # normal: node 0 = sep3(in0) + sep3(in1), node 1 = sep3(in0) + sep3(in1), node 2 = sep3(in1) + skip(in0),
    # node 3 = skip(in0) + dil3(node 0): paths in0: sep3, skip, sep3-dil3; in1: sep3, sep3-dil3.
    # reduce: node 0 = max(in0) + max(in1), node 1 = skip(node 0) + max(in1), node 2 = max(in0) + skip(node 0),
    # node 3 = skip(node 0) + max(in1): paths in0: max, max-skip; in1: max, max-skip.
    def two(a: int, b: int) -> int:
        return 7 + a * 7 + b
    expected = [3, 2, two(3, 5), 399 + 3, 399 + two(3, 5), 798 + 0, 798 + two(0, 2), 1197 + 0, 1197 + two(0, 2)]
    assert features(darts.path_encode(darts.validate(GENOTYPES["DARTS_V2"]))) == sorted(expected)


def test_darts_truncates_paths_longer_than_three_ops(darts):
    # a chain: node k reads state k + 1 (node k - 1, or input 1 for node 0) twice with the same op, so
    # input 1 has one path of each length 1..4; input 0 none. The 4-op path is truncated.
    chain = [["sep_conv_3x3", k // 2 + 1] for k in range(8)]
    value = {"normal": chain, "normal_concat": [2, 3, 4, 5], "reduce": chain, "reduce_concat": [2, 3, 4, 5]}
    code = darts.path_encode(darts.validate(value))
    one_cell = [3, path_feature([3, 3], 7), path_feature([3, 3, 3], 7)]
    assert features(code) == [399 + f for f in one_cell] + [1197 + f for f in one_cell]


def test_darts_none_edges_cut_paths(darts):
    cell = [["none", k // 2] for k in range(8)]
    value = {"normal": cell, "normal_concat": [2, 3, 4, 5], "reduce": cell, "reduce_concat": [2, 3, 4, 5]}
    assert darts.path_encode(darts.validate(value)).sum() == 0
