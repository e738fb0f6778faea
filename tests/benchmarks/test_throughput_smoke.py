"""The throughput benchmark compares like with like: each hand-written twin in
benchmarks/reference_nets.py has nasforge's parameter count and, with nasforge's weights copied in,
its outputs; and the benchmark's measuring path runs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # scripts, not a package

from reference_nets import copy_weights, darts_net, mobilenet_net, nb201_net  # noqa: E402
from throughput import ALL_CONV, MIXED, V3_LIKE, WITH_NONE, Case, measure  # noqa: E402

from nasforge.spaces import create_space  # noqa: E402
from nasforge.spaces.darts import GENOTYPES  # noqa: E402


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_same_function(ours: torch.nn.Module, plain: torch.nn.Module, input_shape: tuple[int, ...]) -> None:
    """After copying the weights, both give the same logits in training (batch statistics) and eval mode."""
    copy_weights(ours, plain)
    x = torch.randn(3, *input_shape, generator=torch.Generator().manual_seed(0))
    for train in (True, False):
        ours.train(train), plain.train(train)
        expected = ours(x)
        assert expected.abs().max() > 0  # a non-trivial output, not 0 == 0
        # float32 sums in another order (pool vs mean): agreement to ~1e-6
        torch.testing.assert_close(plain(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch, params", [(ALL_CONV, 1_531_546), (WITH_NONE, 587_386)])
def test_nb201_twin_has_the_benchmark_size(arch: str, params: int) -> None:
    # 1,531,546 is NAS-Bench-201's count for the all-3x3 cell (C=16, N=5, CIFAR-10)
    space = create_space("nb201")
    assert n_params(space.build(space.validate(arch), (3, 32, 32), 10)) == n_params(nb201_net(arch)) == params


@pytest.mark.parametrize("arch", [MIXED, WITH_NONE])
def test_nb201_twin_computes_the_same(arch: str) -> None:
    space = create_space("nb201", channels=4, cells_per_stage=2)
    assert_same_function(space.build(space.validate(arch), (3, 16, 16), 10), nb201_net(arch, 4, 2), (3, 16, 16))


@pytest.mark.parametrize("name", ["DARTS_V2", "PC_DARTS"])
def test_darts_twin_computes_the_same(name: str) -> None:
    space = create_space("darts", channels=16, cells=8)
    ours = space.build(space.validate(GENOTYPES[name]), (3, 32, 32), 10)
    assert n_params(ours) == n_params(darts_net(GENOTYPES[name]))
    small = create_space("darts", channels=4, cells=5)
    assert_same_function(small.build(small.validate(GENOTYPES[name]), (3, 16, 16), 10),
                         darts_net(GENOTYPES[name], 4, 5), (3, 16, 16))


def test_mobilenet_twins_compute_the_same() -> None:
    space = create_space("mobilenet")
    sampled = [space.sample(np.random.default_rng(seed)).value for seed in (0, 1)]
    for arch in [V3_LIKE, *sampled]:
        assert_same_function(space.build(space.validate(arch), (3, 32, 32), 10), mobilenet_net(arch), (3, 32, 32))


def test_copy_weights_refuses_another_network() -> None:
    with pytest.raises(ValueError, match="state_dict"):
        copy_weights(nb201_net(MIXED, 4, 1), nb201_net(ALL_CONV, 4, 1))


def test_measure_runs_on_a_tiny_case() -> None:
    case = Case("nb201", "mixed", MIXED, (3, 8, 8), 4, (("channels", 4), ("cells_per_stage", 1)))
    row = measure(case, warmup=1, rounds=3)
    assert len(row["nasforge_step_s"]) == len(row["plain_step_s"]) == 3
    assert row["nasforge_img_s"] > 0 and row["plain_img_s"] > 0 and row["ratio"] > 0
    assert row["params"] == n_params(nb201_net(MIXED, 4, 1))
