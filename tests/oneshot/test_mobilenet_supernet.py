"""The MobileNet supernet: every candidate block once per position, extracted subnets bit-identical to
the supernet on their path, the straight-through mode equal to the path, the exact expected cost, SPOS."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn as nn

from nasforge.data import load_dataset
from nasforge.errors import NasforgeError
from nasforge.objective import Objective
from nasforge.oneshot import Supernet, SupernetEstimator, create_method, recalibrate_bn
from nasforge.spaces.base import HasSupernet
from nasforge.spaces.blocks import GhostBottleneck, MBConv
from nasforge.spaces.mobilenet import MobileNetSpace
from test_supernet import train_on_random_paths

TINY = dict(stem=8, widths=(8, 16), strides=(1, 2), depths=(1, 2), kernels=(3, 5), expansions=(2, 3),
            se=(False, True), acts=("relu",), final=16, head=16)
SPACE = MobileNetSpace(width_mults=(0.5, 1.0), **TINY)
SHAPE = (1, 8, 8)


def test_a_mobilenet_supernet_without_affine_is_refused_by_name():
    with pytest.raises(NasforgeError, match="bn_affine.*allowed: true"):
        SPACE.supernet(SHAPE, 5, affine=False)


@pytest.fixture(scope="module")
def trained():
    return train_on_random_paths(SPACE, SHAPE, steps=6)


def test_the_space_has_a_supernet_with_every_candidate_once_per_position():
    assert isinstance(SPACE, HasSupernet)
    net = SPACE.supernet(SHAPE, 5)
    assert isinstance(net, Supernet) and net.sizes == tuple(len(c.options) for c in SPACE.choices)
    candidates = 2 * 2 * 2 * 1  # k x e x se x act
    for chain in net.chains:
        assert [[len(position) for position in stage] for stage in chain.blocks] == [[candidates] * 2] * 2
    blocks = [m for m in net.modules() if isinstance(m, MBConv)]
    assert len(blocks) == 2 * (1 + 2 * 2 * candidates)  # per width: the fixed first MBConv + 2 stages x 2 positions
    # each position's candidates are the distinct (k, e, se) blocks, built by the space
    position = net.chains[1].blocks[1][0]
    kinds = {(m.body[1][0].kernel_size[0], m.body[0][0].out_channels, any(type(x).__name__ == "SqueezeExcite" for x in m.body))
             for m in position}
    assert kinds == {(k, h, se) for k in (3, 5) for h in (16, 24) for se in (False, True)}  # hidden = 8 x e


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_an_extracted_subnet_gives_bit_identical_outputs_to_the_supernet_on_its_path(trained, mode):
    x = torch.randn(6, *SHAPE)
    rng = np.random.default_rng(1)
    for arch in [SPACE.sample(rng) for _ in range(8)]:
        sub = trained.extract(arch)
        assert type(sub) is type(SPACE.build(arch, SHAPE, 5))
        getattr(trained, mode)(), getattr(sub, mode)()
        with torch.no_grad():
            assert torch.equal(trained(x, path=trained.path(arch)), sub(x)), arch.key


def test_the_subnet_holds_copies_of_the_weights(trained):
    arch = SPACE.sample(np.random.default_rng(2))
    sub = trained.extract(arch)
    with torch.no_grad():
        list(sub.parameters())[-1].add_(1.0)  # the classifier bias
    assert not torch.equal(trained.extract(arch)(torch.ones(2, *SHAPE)), sub(torch.ones(2, *SHAPE)))


def test_skipped_blocks_are_identity_and_inactive_decisions_are_ignored(trained):
    arch = SPACE.decode([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0])  # depth 1 in both stages
    assert [len(s) for s in arch.value["stages"]] == [1, 1]
    path = list(trained.path(arch))
    other = path.copy()
    other[trained.field_indices(0, 1)[0]] = 1  # the second block of stage 0 is inactive at depth 1
    x = torch.randn(3, *SHAPE)
    trained.eval()
    with torch.no_grad():
        assert torch.equal(trained(x, path=path), trained(x, path=other))
        assert len(trained.network(path)) == 2 + 2 + 6  # stem, one block per stage, head


def test_the_ghost_block_type_is_a_candidate_too():
    space = MobileNetSpace(width_mults=(1.0,), blocks=("mbconv", "ghost"), **{**TINY, "expansions": (2,), "se": (False,)})
    net = space.supernet(SHAPE, 5)
    assert sum(isinstance(m, GhostBottleneck) for m in net.modules()) == 2 * 2 * 2  # 2 stages x 2 positions x 2 kernels
    arch = space.decode([0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])  # ghost and mbconv blocks
    net.eval()
    x = torch.randn(2, *SHAPE)
    with torch.no_grad():
        assert torch.equal(net(x, path=net.path(arch)), net.extract(arch).eval()(x))


def test_straight_through_forward_is_the_path_and_every_chosen_weight_gets_gradient(trained):
    arch = SPACE.decode([1, 1] + [1, 0, 1, 0] * 2 + [1] + [0, 1, 0, 0] * 2)  # both stages at depth 2
    path = trained.path(arch)
    one_hot = nn.functional.one_hot(torch.tensor(path), max(trained.sizes)).float()
    weights = one_hot.clone().requires_grad_()
    trained.eval()
    x = torch.randn(4, *SHAPE)
    out = trained(x, weights=weights, path=path)
    with torch.no_grad():
        assert torch.allclose(out, trained(x, path=path), atol=1e-5)
    out.square().sum().backward()
    chosen = weights.grad[torch.arange(len(path)), torch.tensor(path)]
    assert (chosen != 0).all()  # every decision on the path, depth and width included, is gated


def test_recalibrating_on_a_path_equals_recalibrating_the_subnet(trained):
    import copy

    arch = SPACE.sample(np.random.default_rng(5))
    calib, x = torch.randn(40, *SHAPE), torch.randn(5, *SHAPE)
    net = recalibrate_bn(copy.deepcopy(trained), calib, batch_size=8, path=trained.path(arch))
    sub = recalibrate_bn(trained.extract(arch), calib, batch_size=8)
    with torch.no_grad():
        assert torch.equal(net(x, path=net.path(arch)), sub(x))


def test_expected_cost_is_the_exact_expectation_over_independent_decisions():
    """Against brute force: every decision vector, its probability and the cost of its network's layers."""
    space = MobileNetSpace(width_mults=(0.5, 1.0), **{**TINY, "expansions": (2,), "se": (False,)})
    net = space.supernet(SHAPE, 5)
    params = lambda chain: [float(sum(p.numel() for p in m.parameters())) for m in chain]  # noqa: E731
    fixed, blocks = net.unit_costs(params)
    probs = torch.softmax(torch.randn(len(net.sizes), max(net.sizes), generator=torch.Generator().manual_seed(0)).double(), 1)
    probs = probs * net.derivable
    probs = probs / probs.sum(1, keepdim=True)
    expected = 0.0
    for path in itertools.product(*(range(n) for n in net.sizes)):
        p = math.prod(float(probs[i, j]) for i, j in enumerate(path))
        expected += p * sum(params(net.network(path)))
    assert net.expected_cost(probs, fixed, blocks).item() == pytest.approx(expected, rel=1e-9)


def test_mixed_mode_is_refused_by_name():
    net = SPACE.supernet(SHAPE, 5)
    with pytest.raises(NasforgeError, match="path"):
        net(torch.zeros(2, *SHAPE), weights=torch.ones(len(net.sizes), max(net.sizes)))


def test_spos_trains_the_mobilenet_supernet_and_scores_inherited_subnets():
    d = load_dataset("digits", seed=0)
    data = replace(d, x_train=d.x_train[:512], y_train=d.y_train[:512], x_val=d.x_val[:96], y_val=d.y_val[:96])
    space = MobileNetSpace(width_mults=(1.0,), **TINY)
    spos = create_method("spos", space=space, data=data, epochs=5, batch_size=32, seed=0, lr=0.3, population_size=4,
                         sample_size=2, threads=1)
    log = spos.fit()
    assert len(log) == 5 and log[-1]["train_loss"] < log[0]["train_loss"]
    strategy = spos.proposals(Objective("val_acc"))
    estimator = SupernetEstimator(supernet=spos.supernet, data=data, calibration_images=64)
    accs = []
    for _ in range(4):
        arch = strategy.ask()
        result = estimator.evaluate(arch)
        strategy.tell(arch, result)
        accs.append(result.metrics["val_acc"])
    assert max(accs) > 20.0  # 80 steps lift inherited subnets above chance (10 %; measured 35 %)


def test_gdas_samples_only_existing_options_of_decisions_with_fewer_of_them():
    """MobileNet's decisions have 2 or 3 options; alpha is padded to the widest, and the padding is never
    sampled or derived (it was, before alpha's padding was masked, and the step failed)."""
    d = load_dataset("digits", seed=0)
    data = replace(d, x_train=d.x_train[:64], y_train=d.y_train[:64], x_val=d.x_val[:32], y_val=d.y_val[:32])
    space = MobileNetSpace(width_mults=(0.5, 1.0), **TINY)
    assert len(set(len(c.options) for c in space.choices)) > 1
    gdas = create_method("gdas", space=space, data=data, epochs=1, batch_size=32, seed=0, threads=1)
    gdas.fit()
    assert torch.isinf(gdas.logits()).any()
    arch = gdas.derive()
    assert space.validate(arch.value) == arch
