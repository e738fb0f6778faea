"""Zero-cost proxies against answers worked out by hand or by an independent computation, on every space."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.stats import spearmanr

from nasforge.data import load_dataset
from nasforge.errors import NasforgeError
from nasforge.estimators.zero_cost import PROXIES, CombinedScore, ZeroCostEstimator, compute_proxies
from nasforge.estimators.zero_cost.activation import JACOB_COV_K
from nasforge.spaces import create_space


def _linear_chain() -> nn.Module:
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        model[2].weight.copy_(torch.tensor([[-1.0, 2.0]]))
        model[1].running_mean.fill_(5.0)  # BN is removed for synflow: its statistics must not matter
        model[1].weight.fill_(-3.0)
    return model


def _batch(n: int = 8, shape: tuple[int, ...] = (2,), classes: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g), torch.randint(0, classes, (n,), generator=g)


def test_synflow_of_a_linear_chain_is_worked_out_by_hand():
    # |W2| |W1| 1 = [1, 2] . [1 + 2, 3 + 4] = 17 = R; R is linear in each layer's weights, so
    # sum over a layer of W * dR/dW = R, and synflow sums both layers: 34
    x, y = _batch()
    assert compute_proxies(_linear_chain(), x, y, ["synflow"]).values["synflow"] == pytest.approx(34.0)


def test_naswot_is_the_log_determinant_of_the_code_agreement_kernel():
    # codes 110, 100, 000: agreements [[3, 2, 1], [2, 3, 2], [1, 2, 3]], determinant 8
    model = nn.Sequential(nn.ReLU(), nn.Linear(3, 2))
    x = torch.tensor([[1.0, 1.0, -1.0], [1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]])
    scores = compute_proxies(model, x, torch.tensor([0, 1, 0]), ["naswot"])
    assert scores.values["naswot"] == pytest.approx(math.log(8.0))
    same = compute_proxies(model, torch.ones(3, 3), torch.tensor([0, 1, 0]), ["naswot"])  # equal codes: singular
    assert math.isnan(same.values["naswot"]) and "naswot" in same.flags


def test_jacob_cov_of_a_linear_network_sees_identical_jacobians():
    # d(sum of logits)/dx is the column sums of W for every input: correlation all ones, eigenvalues n, 0, ..., 0
    model, n = nn.Linear(5, 3), 6
    x, y = _batch(n, (5,), 3)
    k = JACOB_COV_K
    expected = -(math.log(n + k) + 1 / (n + k) + (n - 1) * (math.log(k) + 1 / k))
    assert compute_proxies(model, x, y, ["jacob_cov"]).values["jacob_cov"] == pytest.approx(expected, rel=1e-6)


def test_saliencies_match_an_independent_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    x, y = _batch(10, (4,), 3)
    weights = [model[0].weight, model[2].weight]
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, weights)
    flat = torch.cat([w.detach().flatten() for w in weights])

    def loss_of(vector: torch.Tensor) -> torch.Tensor:
        w1, w2 = vector[:24].view(6, 4), vector[24:].view(3, 6)
        return F.cross_entropy(F.linear(torch.tanh(F.linear(x, w1, model[0].bias)), w2, model[2].bias), y)

    g = torch.cat([gr.flatten() for gr in grads])
    hessian = torch.autograd.functional.hessian(loss_of, flat)
    z1 = F.linear(x, model[0].weight, model[0].bias)
    (dz1,) = torch.autograd.grad(F.cross_entropy(model[2](torch.tanh(z1)), y), z1)
    z2 = model(x)
    (dz2,) = torch.autograd.grad(F.cross_entropy(z2, y), z2)
    expected = {
        "snip": float((flat * g).abs().sum()),
        "grad_norm": float(grads[0].norm() + grads[1].norm()),
        "grasp": float(-(flat * (hessian @ g)).sum()),
        "fisher": float(0.5 * ((z1.detach() * dz1) ** 2).mean(0).sum() + 0.5 * ((z2.detach() * dz2) ** 2).mean(0).sum()),
        "l2_norm": float(weights[0].detach().norm() + weights[1].detach().norm()),
        "params": 4 * 6 + 6 + 6 * 3 + 3,
    }
    values = compute_proxies(model, x, y, list(expected)).values
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, rel=1e-4), name


def test_proxies_leave_the_network_as_it_was_and_are_deterministic():
    space = create_space("nb201", channels=4, cells_per_stage=1)
    torch.manual_seed(0)
    model = space.build(space.validate("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"), (3, 8, 8), 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _batch(8, (3, 8, 8), 10)
    first = compute_proxies(model, x, y, seed=3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    again = compute_proxies(model, x, y, seed=3)
    assert first.values == again.values and not first.flags
    assert compute_proxies(model, x, y, seed=4).values["zen"] != first.values["zen"]  # zen draws from the seed


def test_a_network_of_none_edges_scores_without_crashing():
    space = create_space("nb201", channels=4, cells_per_stage=1)
    torch.manual_seed(0)
    model = space.build(space.validate("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), (3, 8, 8), 10)
    scores = compute_proxies(model, *_batch(8, (3, 8, 8), 10))
    assert set(scores.values) == set(PROXIES)
    assert scores.values["synflow"] == 0.0 and scores.values["snip"] == 0.0  # no path from the input carries flow
    for name in ("jacob_cov", "naswot"):  # the output does not depend on the input: undefined, flagged
        assert math.isnan(scores.values[name]) and name in scores.flags
    assert all(math.isfinite(v) for n, v in scores.values.items() if n not in scores.flags)


def test_overflow_and_errors_are_flagged_not_raised():
    class Exploding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x) * torch.tensor(float("inf"), dtype=x.dtype)

    scores = compute_proxies(Exploding(), *_batch(4, (2,), 2))
    assert math.isnan(scores.values["synflow"]) and "not finite" in scores.flags["synflow"]
    broken = compute_proxies(nn.Linear(3, 2), *_batch(4, (2,), 2))  # the batch does not fit the network
    assert "the shared pass failed" in broken.flags["snip"] and math.isnan(broken.values["snip"])


@pytest.mark.parametrize("name,options,shape", [("nb201", {"channels": 4, "cells_per_stage": 1}, (3, 16, 16)),
                                                ("darts", {"channels": 4, "cells": 2}, (3, 16, 16)),
                                                ("mobilenet", {"stem": 8, "widths": (8, 16, 16, 24, 32), "final": 64, "head": 64},
                                                 (3, 16, 16))])
def test_every_proxy_runs_on_every_space(name, options, shape):
    space = create_space(name, **options)
    rng = np.random.default_rng(0)
    x, y = _batch(8, shape, 10)
    for _ in range(2):
        torch.manual_seed(0)
        scores = compute_proxies(space.build(space.sample(rng), shape, 10), x, y)
        assert not scores.flags, scores.flags
        assert all(math.isfinite(v) for v in scores.values.values())
        assert scores.seconds["probe"] > 0


def test_combined_score_ranks_by_mean_percentile_and_learns_weights():
    rng = np.random.default_rng(0)
    target = rng.normal(size=200)
    rows = [{"good": t + 0.1 * rng.normal(), "noise": rng.normal(), "bad": -t} for t in target]
    equal = CombinedScore(["good", "noise"]).set_reference(rows)
    assert equal.score({"good": math.inf, "noise": math.inf}) == pytest.approx(1.0)
    assert equal.score({"good": math.nan, "noise": -math.inf}) == 0.0  # undefined ranks lowest
    rows = [{**row, "bump": -abs(t)} for row, t in zip(rows, target)]  # good in the middle, bad at both ends
    mean = CombinedScore(["noise", "bump"]).set_reference(rows)
    learned = CombinedScore(["noise", "bump"]).set_reference(rows).fit(rows[:50], np.abs(target[:50]) * -1)
    truth = -np.abs(target[50:])
    assert spearmanr(learned.scores(rows[50:]), truth)[0] > spearmanr(mean.scores(rows[50:]), truth)[0] + 0.2
    nonmonotone = CombinedScore(["good"]).set_reference(rows).fit(rows[:50], -np.abs(target[:50]))
    assert spearmanr(nonmonotone.scores(rows[50:]), truth)[0] > 0.8  # a mean of percentiles cannot do this
    with pytest.raises(NasforgeError, match="weights"):
        CombinedScore(["a", "b"], weights=[1.0, -1.0])
    with pytest.raises(NasforgeError, match="set_reference"):
        CombinedScore(["a"]).score({"a": 1.0})


def test_zero_cost_estimator_scores_architectures_of_a_space():
    space = create_space("nb201", channels=4, cells_per_stage=1)
    data = load_dataset("digits")
    estimator = ZeroCostEstimator(space=space, data=data, proxies=["naswot", "params"], batch_size=16,
                                  combine=["naswot", "jacob_cov"], reference=4)
    arch = space.sample(np.random.default_rng(1))
    result = estimator.evaluate(arch)
    assert set(result.metrics) == {"naswot", "params", "zc_score"} and 0 <= result.metrics["zc_score"] <= 1
    assert result.cost_s > 0
    again = ZeroCostEstimator(space=space, data=data, proxies=["naswot", "params"], batch_size=16,
                              combine=["naswot", "jacob_cov"], reference=4).evaluate(arch)
    assert again.metrics == result.metrics
    with pytest.raises(NasforgeError, match="proxies: unknown 'nope'"):
        ZeroCostEstimator(space=space, data=data, proxies=["nope"])
    with pytest.raises(NasforgeError, match="batch_size"):
        ZeroCostEstimator(space=space, data=data, batch_size=0)


def test_a_search_with_the_zero_cost_estimator_ranks_by_the_combined_score(tmp_path):
    from nasforge.runner.config import RunConfig
    from nasforge.runner.search import run_search

    config = RunConfig(out=str(tmp_path / "run"), space="nb201", space_options={"channels": 4, "cells_per_stage": 1},
                       strategy="random", estimator="zero_cost", objective="zc_score", budget=4,
                       estimator_options={"batch_size": 16, "reference": 4})
    outcome = run_search(config)
    assert len(outcome.trials) == 4 and all(t.result.ok for t in outcome.trials)
    assert outcome.best.result.metrics["zc_score"] == max(t.result.metrics["zc_score"] for t in outcome.trials)
    with pytest.raises(NasforgeError, match="objective: the zero_cost estimator reports no 'val_acc'"):
        run_search(RunConfig(out=str(tmp_path / "other"), estimator="zero_cost", budget=1))
