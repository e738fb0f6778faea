"""DARTS' supernet of the darts space: 14 mixed edges per cell over its 8 ops, subnets bit-identical to the
supernet on their path, mixed and straight-through modes equal to their definitions, DARTS' genotype
derivation, the one-shot methods on it and a search from the command line."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn as nn

from nasforge.cli import main
from nasforge.data import load_dataset
from nasforge.errors import NasforgeError
from nasforge.oneshot import Supernet, create_method
from nasforge.oneshot.gdas import gumbel_straight_through
from nasforge.spaces.base import HasSupernet
from nasforge.spaces.darts import CONCAT, DARTS_OPS, GENOTYPES, DartsSpace
from test_supernet import train_on_random_paths

SPACE = DartsSpace(channels=4, cells=3, stem_multiplier=1)  # a normal, then two reduction cells
SHAPE = (3, 8, 8)
# node 0 reads input 1 twice with the same op, node 1 has `none` on one edge, node 3 reads node 2 twice
REPEATS = {"normal": [["sep_conv_3x3", 1], ["sep_conv_3x3", 1], ["none", 2], ["max_pool_3x3", 0],
                      ["skip_connect", 0], ["dil_conv_5x5", 3], ["avg_pool_3x3", 2], ["sep_conv_5x5", 2]],
           "normal_concat": CONCAT,
           "reduce": [["skip_connect", 0], ["skip_connect", 1], ["none", 0], ["none", 2],
                      ["max_pool_3x3", 1], ["dil_conv_3x3", 3], ["sep_conv_5x5", 4], ["avg_pool_3x3", 0]],
           "reduce_concat": CONCAT}


@pytest.fixture(scope="module")
def trained():
    return train_on_random_paths(SPACE, SHAPE, steps=4)


@pytest.fixture(scope="module")
def trained_without_affine():
    return train_on_random_paths(SPACE, SHAPE, steps=4, affine=False)


@pytest.fixture(scope="module")
def data():
    d = load_dataset("digits", seed=0)
    return replace(d, x_train=d.x_train[:128], y_train=d.y_train[:128], x_val=d.x_val[:64], y_val=d.y_val[:64])


def test_the_space_has_a_supernet_with_every_op_on_14_edges_per_cell():
    assert isinstance(SPACE, HasSupernet)
    net = SPACE.supernet(SHAPE, 5)
    assert isinstance(net, Supernet) and net.weight_sizes == (8,) * 28 and net.sizes == tuple(
        len(c.options) for c in SPACE.choices)
    assert net.derivable.shape == (28, 8) and not net.derivable[:, DARTS_OPS.index("none")].any()
    edges = [m for m in net.modules() if isinstance(m, nn.ModuleList) and len(m) == len(DARTS_OPS)]
    assert len(edges) == 14 * 3
    # outside the edges the supernet is the standalone network: stem, preprocessing, classifier
    standalone = SPACE.build(SPACE.decode([0] * len(SPACE.choices)), SHAPE, 5)  # all `none`: no op weights
    edge_params = sum(p.numel() for e in edges for p in e.parameters())
    assert sum(p.numel() for p in net.parameters()) - edge_params == sum(p.numel() for p in standalone.parameters())


def test_without_affine_every_edge_ops_batchnorm_learns_no_scale_and_shift(trained, trained_without_affine):
    def edge_norms(net):
        return [m for cell in net.cells for m in cell.edges.modules() if isinstance(m, nn.BatchNorm2d)]

    assert edge_norms(trained_without_affine) and not any(m.affine for m in edge_norms(trained_without_affine))
    assert all(m.affine for m in edge_norms(trained))  # the reductions' FactorizedReduce skips included
    scales = sum(2 * m.num_features for m in edge_norms(trained))
    assert sum(p.numel() for p in trained.parameters()) - sum(p.numel() for p in trained_without_affine.parameters()) == scales


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("supernet", ["trained", "trained_without_affine"])
def test_an_extracted_subnet_gives_bit_identical_outputs_to_the_supernet_on_its_path(request, supernet, mode):
    trained = request.getfixturevalue(supernet)
    x = torch.randn(6, *SHAPE)
    rng = np.random.default_rng(1)
    archs = [SPACE.validate(REPEATS), SPACE.validate(GENOTYPES["DARTS_V2"])] + [SPACE.sample(rng) for _ in range(4)]
    for arch in archs:
        sub = trained.extract(arch)
        assert type(sub) is type(SPACE.build(arch, SHAPE, 5))
        getattr(trained, mode)(), getattr(sub, mode)()
        with torch.no_grad():
            assert torch.equal(trained(x, path=trained.path(arch)), sub(x)), arch.key
    trained.train()


def one_hot_weights(arch) -> torch.Tensor:
    """Mixed-mode weights that put all of each of `arch`'s pairs on its op, `none` on every other edge."""
    weights = torch.zeros(28, 8)
    weights[:, DARTS_OPS.index("none")] = 1.0
    for t, cell in enumerate(("normal", "reduce")):
        for k, (op, node_input) in enumerate(arch.value[cell]):
            edge = t * 14 + sum(range(2, k // 2 + 2)) + node_input
            weights[edge] = nn.functional.one_hot(torch.tensor(DARTS_OPS.index(op)), 8).float()
    return weights


def test_mixed_mode_with_an_architectures_one_hot_weights_is_its_path(trained):
    arch = SPACE.validate(GENOTYPES["PC_DARTS"])  # two distinct inputs per node
    x = torch.randn(4, *SHAPE)
    with torch.no_grad():
        assert torch.allclose(trained(x, weights=one_hot_weights(arch)), trained(x, path=trained.path(arch)), atol=1e-6)
        trained.aux_skip = 0.5  # DARTS-'s auxiliary skip changes the mixed ops only
        assert not torch.allclose(trained(x, weights=one_hot_weights(arch)), trained(x, path=trained.path(arch)))
        trained.aux_skip = 0.0


def test_mixed_mode_weighs_every_op_of_every_edge(trained):
    """Each edge's weight row moves the logits, and a row's `none` weight only through the others."""
    x = torch.randn(4, *SHAPE)
    w = torch.softmax(torch.randn(28, 8), -1).requires_grad_()
    trained(x, weights=w).square().sum().backward()
    assert (w.grad[:, 1:].abs().sum(1) > 0).all() and (w.grad[:, 0] == 0).all()


def test_straight_through_runs_one_op_per_edge_and_alpha_gets_its_gradient(trained):
    alpha = torch.randn(28, 8, requires_grad=True)
    weights, choice = gumbel_straight_through(alpha, 1.0, torch.Generator().manual_seed(0))
    x = torch.randn(4, *SHAPE)
    hard = nn.functional.one_hot(torch.tensor(choice), 8).float()
    out = trained(x, weights=weights, path=choice)
    assert torch.allclose(out, trained(x, weights=hard), atol=1e-5)  # every edge: its sampled op only
    out.sum().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0


def test_derivation_is_darts_genotype_top_two_edges_per_node_with_their_strongest_op():
    net = SPACE.supernet(SHAPE, 5)
    weights = torch.full((28, 8), 0.01)
    # normal node 0 (edges 0, 1): `none` strongest on edge 0, its runner-up sep_conv_3x3 still ranks it
    weights[0, [0, 4]], weights[1, 3] = torch.tensor([0.9, 0.3]), 0.2
    # node 1 (edges 2-4): edge 4 strongest (dil_conv_3x3), then edge 2 (max_pool_3x3); edge 3 only `none`
    weights[2, 1], weights[3, 0], weights[4, 6] = 0.4, 0.99, 0.5
    # node 2 (edges 5-8) and node 3 (edges 9-13): inputs 3 and 0, then 4 and 1
    weights[8, 7], weights[5, 2], weights[13, 5], weights[10, 3] = 0.6, 0.5, 0.7, 0.6
    weights[14:, 4] = torch.linspace(0.9, 0.2, 14)  # reduce: sep_conv_3x3 everywhere, earlier edges stronger
    arch = net.derive(weights)
    assert arch.value["normal"] == [["sep_conv_3x3", 0], ["skip_connect", 1], ["dil_conv_3x3", 2],
                                    ["max_pool_3x3", 0], ["dil_conv_5x5", 3], ["avg_pool_3x3", 0],
                                    ["sep_conv_5x5", 4], ["skip_connect", 1]]
    assert arch.value["reduce"] == [["sep_conv_3x3", j] for j in (0, 1, 0, 1, 0, 1, 0, 1)]
    assert SPACE.build(arch, SHAPE, 5)(torch.randn(2, *SHAPE)).shape == (2, 5)


@pytest.mark.parametrize("method, options", [("darts", {"defence": "auxskip"}),
                                             ("gdas", {}), ("spos", {"population_size": 2, "sample_size": 1}),
                                             ("enas", {"derive_samples": 2, "controller_batch": 2})])
def test_the_one_shot_methods_train_the_darts_supernet_and_propose_its_architectures(data, method, options):
    trainer = create_method(method, space=SPACE, data=data, epochs=1, batch_size=32, seed=0, **options)
    log = trainer.fit()
    assert len(log) == 1 and log[0]["train_loss"] > 0
    if method in ("darts", "gdas"):
        assert trainer.alpha.shape == (28, 8)
        assert log[0]["arch"] == trainer.derive().key and 16 * log[0]["skip_share"] == round(16 * log[0]["skip_share"])
        assert all(len({node_input for _, node_input in trainer.derive().value[cell][k:k + 2]}) == 2
                   for cell in ("normal", "reduce") for k in range(0, 8, 2))  # two distinct inputs per node
    from nasforge.objective import Objective

    arch = trainer.proposals(Objective("val_acc")).ask()
    assert SPACE.validate(arch.value) == arch


def test_proxyless_refuses_the_darts_space(data):
    with pytest.raises(NasforgeError, match="proxyless searches the mobilenet space"):
        create_method("proxyless", space=SPACE, data=data, batch_size=32)


CONFIG = """
dataset: {data}
space: darts
space_options: {channels: 4, cells: 3, stem_multiplier: 1}
strategy: darts
strategy_options: {batch_size: 64, alpha_lr: 0.01}
estimator: supernet
estimator_options: {calibration_images: 64}
epochs: 1
seed: 0
"""


def test_a_darts_space_search_from_the_command_line(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()  # 400 of them: 240 to train on, 80 to validate (and score) with
    np.savez(tmp_path / "digits400.npz", x=digits.images[:400].astype(np.float32) / 16, y=digits.target[:400])
    (tmp_path / "run.yaml").write_text(CONFIG.replace("{data}", str(tmp_path / "digits400.npz")))
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 0
    rows = list(csv.DictReader((tmp_path / "run" / "trials.csv").open()))
    assert len(rows) == 1 and rows[0]["status"] == "ok"  # the derived genotype, scored with inherited weights
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    log = [json.loads(line) for line in (tmp_path / "run" / "supernet_log.jsonl").open()]
    assert log[-1]["arch"] == best["key"] and SPACE.validate(json.loads(best["key"])).key == best["key"]
