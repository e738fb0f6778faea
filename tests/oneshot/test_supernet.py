"""The NB201 supernet: every op once, extracted subnets bit-identical to the supernet on their path,
mixed and straight-through modes equal to their definitions, BatchNorm recalibration exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.oneshot import Supernet, recalibrate_bn
from nasforge.oneshot.gdas import gumbel_straight_through
from nasforge.spaces.base import HasSupernet
from nasforge.spaces.nb201 import NB201_OPS, NB201Space

SPACE = NB201Space(channels=4, cells_per_stage=2)
ALL_NONE_NODE = "|none~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|avg_pool_3x3~2|"


def train_on_random_paths(space, shape, steps: int, affine: bool = True):
    """`space`'s supernet after `steps` SGD steps on random paths: weights and BN statistics off their init."""
    torch.manual_seed(0)  # the supernet's initial weights
    net = space.supernet(shape, 5, affine=affine)
    x, y = torch.randn(16, *shape), torch.randint(0, 5, (16,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        loss = nn.functional.cross_entropy(net(x, path=net.path(space.sample(rng))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


@pytest.fixture(scope="module")
def trained():
    return train_on_random_paths(SPACE, (3, 8, 8), steps=5)


@pytest.fixture(scope="module")
def trained_without_affine():
    return train_on_random_paths(SPACE, (3, 8, 8), steps=5, affine=False)


def test_the_space_has_a_supernet_holding_every_op_once():
    assert isinstance(SPACE, HasSupernet)
    net = SPACE.supernet((3, 8, 8), 5)
    assert isinstance(net, Supernet) and net.sizes == (5,) * 6
    conv_params = 4 * 4 * (1 + 9) + 2 * 4 * 2  # per edge at C=4: conv 1x1 + conv 3x3 weights, two BN affines
    edges = [m for m in net.modules() if isinstance(m, nn.ModuleList) and len(m) == len(NB201_OPS)]
    assert len(edges) == 6 * 2 * 3  # 6 edges x 2 cells x 3 stages, each with the 5 ops
    assert sum(p.numel() for p in edges[0].parameters()) == conv_params
    # outside the cells the supernet is the standalone network: same parameter count there
    standalone = SPACE.build(SPACE.decode([0] * 6), (3, 8, 8), 5)
    cell_params = sum(p.numel() for e in edges for p in e.parameters())
    assert sum(p.numel() for p in net.parameters()) - cell_params == sum(p.numel() for p in standalone.parameters())


def edge_norms(net: nn.Module) -> list[nn.BatchNorm2d]:
    """The BatchNorms of `net`'s cell edges (a supernet's or a subnet's), not of its reduction blocks."""
    return [m for cell in net.cells if hasattr(cell, "edges") for m in cell.edges.modules() if isinstance(m, nn.BatchNorm2d)]


def test_without_affine_the_ops_batchnorms_learn_no_scale_and_shift_and_subnets_get_one_and_zero(trained, trained_without_affine):
    assert len(edge_norms(trained_without_affine)) == 6 * 2 * 3 * 2  # two convs per edge
    assert not any(m.affine for m in edge_norms(trained_without_affine)) and all(m.affine for m in edge_norms(trained))
    scales = sum(2 * m.num_features for m in edge_norms(trained))
    assert sum(p.numel() for p in trained.parameters()) - sum(p.numel() for p in trained_without_affine.parameters()) == scales
    arch = SPACE.validate("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    norms = edge_norms(trained_without_affine.extract(arch))
    assert len(norms) == 3 * 2 * 3 and all(m.affine for m in norms)  # 3 convs a cell, 2 cells a stage, 3 stages
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias)) for m in norms)
    # the affine supernet's trained scales are inherited as they are
    assert not all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in edge_norms(trained.extract(arch)))


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("supernet", ["trained", "trained_without_affine"])
def test_an_extracted_subnet_gives_bit_identical_outputs_to_the_supernet_on_its_path(request, supernet, mode):
    trained = request.getfixturevalue(supernet)
    x = torch.randn(6, 3, 8, 8)
    rng = np.random.default_rng(1)
    archs = [SPACE.validate(ALL_NONE_NODE)] + [SPACE.sample(rng) for _ in range(9)]
    for arch in archs:
        sub = trained.extract(arch)
        assert type(sub) is type(SPACE.build(arch, (3, 8, 8), 5))
        getattr(trained, mode)(), getattr(sub, mode)()
        with torch.no_grad():
            assert torch.equal(trained(x, path=trained.path(arch)), sub(x)), arch.key
    trained.train()


def test_the_subnet_holds_copies_of_the_weights(trained):
    arch = SPACE.validate(ALL_NONE_NODE)
    sub = trained.extract(arch)
    with torch.no_grad():
        next(sub.parameters()).add_(1.0)
    assert not torch.equal(next(sub.parameters()), next(trained.parameters()))


def test_mixed_mode_is_the_weighted_sum_of_the_single_op_networks_on_one_edge(trained):
    """With one edge mixed and every other edge's weights one-hot, the mixed op's output on a cell of
    one stage is linear in the weights; checked on the first cell's edge 1<-0 directly."""
    cell = trained.cells[0]
    x = torch.randn(2, 4, 8, 8)
    w = torch.softmax(torch.randn(6, 5), dim=-1)
    with torch.no_grad():
        mixed = cell._edge(0, x, w, None, 0.0)
        by_hand = sum(w[0, o] * cell.edges[0][o](x) for o in range(5))
        assert torch.allclose(mixed, by_hand, atol=1e-6)
        with_aux = cell._edge(0, x, w, None, 0.5)  # DARTS-'s auxiliary skip adds 0.5 x
        assert torch.allclose(with_aux, by_hand + 0.5 * x, atol=1e-6)


def test_straight_through_forward_is_the_sampled_path_and_alpha_gets_its_gradient(trained):
    alpha = torch.randn(6, 5, requires_grad=True)
    weights, path = gumbel_straight_through(alpha, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(weights.detach().argmax(1), torch.tensor(path))
    assert torch.allclose(weights.detach(), nn.functional.one_hot(torch.tensor(path), 5).float(), atol=1e-6)
    x = torch.randn(4, 3, 8, 8)
    trained.eval()
    out = trained(x, weights=weights, path=path)
    assert torch.allclose(out, trained(x, path=path), atol=1e-5)
    out.sum().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    trained.train()


def test_gumbel_samples_follow_softmax_alpha():
    alpha = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.0001]]))
    generator = torch.Generator().manual_seed(0)
    counts = np.bincount([gumbel_straight_through(alpha, 1.0, generator)[1][0] for _ in range(4000)], minlength=5)
    # Gumbel-max draws exactly from softmax(alpha): 4000 draws, 4 binomial standard deviations
    expected = np.array([0.1, 0.2, 0.3, 0.4, 0.0]) / 1.0001
    assert np.all(np.abs(counts / 4000 - expected) <= 4 * np.sqrt(expected * (1 - expected) / 4000) + 1e-3)


def test_derivation_is_the_strongest_non_none_op_of_each_edge():
    net = SPACE.supernet((3, 8, 8), 5)
    weights = torch.tensor([[0.9, 0.05, 0.02, 0.02, 0.01],   # none strongest: the runner-up skip_connect
                            [0.1, 0.1, 0.6, 0.1, 0.1],
                            [0.0, 0.0, 0.0, 1.0, 0.0],
                            [0.2, 0.1, 0.1, 0.1, 0.5],
                            [0.2, 0.5, 0.1, 0.1, 0.1],
                            [0.5, 0.1, 0.1, 0.2, 0.1]])
    arch = net.derive(weights)
    assert arch.key == "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|"
    assert SPACE.build(arch, (3, 8, 8), 5)(torch.randn(2, 3, 8, 8)).shape == (2, 5)


def test_recalibration_sets_running_statistics_to_the_exact_batch_moments():
    bn = nn.BatchNorm2d(3)
    x = torch.randn(10, 3, 4, 4) * 2 + 1
    bn.running_mean.fill_(7.0)
    recalibrate_bn(bn, x, batch_size=10)
    assert not bn.training and bn.momentum == 0.1
    assert torch.allclose(bn.running_mean, x.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(bn.running_var, x.var((0, 2, 3), unbiased=True), atol=1e-5)
    # several batches: the plain average of each batch's moments (cumulative, momentum None)
    recalibrate_bn(bn, x, batch_size=5)
    assert torch.allclose(bn.running_mean, x.mean((0, 2, 3)), atol=1e-6)


def test_recalibrating_the_supernet_on_a_path_equals_recalibrating_the_subnet(trained):
    arch = SPACE.validate("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    x, calib = torch.randn(4, 3, 8, 8), torch.randn(33, 3, 8, 8)
    sub = recalibrate_bn(trained.extract(arch), calib, batch_size=8)
    import copy

    net = recalibrate_bn(copy.deepcopy(trained), calib, batch_size=8, path=trained.path(arch))
    with torch.no_grad():
        assert torch.equal(net(x, path=net.path(arch)), sub(x))
    with pytest.raises(NasforgeError, match="calibration"):
        recalibrate_bn(sub, calib[:1])
