"""MnasNet reward, Pareto fronts, crowding and hypervolume against hand computations; objective parsing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.hardware.objectives import (HARD, crowding_distance, hypervolume, mnasnet_reward, non_dominated_sort,
                                          pareto_front)
from nasforge.objective import MnasNetReward, Objective, Pareto, parse_objective


def test_mnasnet_reward_soft_and_hard_by_hand():
    # soft: 0.75 * (100 / 80) ** -0.07 = 0.75 * 0.984502... ; under the target the reward grows the same way
    assert mnasnet_reward(0.75, 100.0, target=80.0) == pytest.approx(0.75 * 1.25 ** -0.07, rel=1e-12)
    assert mnasnet_reward(0.75, 100.0, target=80.0) == pytest.approx(0.738376, abs=1e-6)
    assert mnasnet_reward(0.75, 40.0, target=80.0) == pytest.approx(0.75 * 2 ** 0.07, rel=1e-12)  # 0.787... > 0.75
    # hard: no reward for being faster than the target, accuracy x T / LAT above it
    assert mnasnet_reward(0.75, 40.0, target=80.0, alpha=HARD[0], beta=HARD[1]) == 0.75
    assert mnasnet_reward(0.75, 160.0, target=80.0, alpha=HARD[0], beta=HARD[1]) == pytest.approx(0.375)
    with pytest.raises(NasforgeError, match="target"):
        mnasnet_reward(0.75, 10.0, target=0.0)


def test_non_dominated_sort_and_front_on_hand_made_points():
    points = [[1, 5], [2, 4], [1, 4], [0, 6], [2, 4], [0, 0]]
    # [1,4] is dominated by [1,5] and [2,4]; [0,0] by everything; the two [2,4] are equal and share a front
    assert non_dominated_sort(points) == [[0, 1, 3, 4], [2], [5]]
    assert pareto_front(points) == [0, 1, 3, 4]
    assert pareto_front(np.zeros((0, 2))) == []


def test_crowding_distance_by_hand():
    # sorted by x: a(0,3) b(1,2) c(3,1) d(4,0); range 4 in x and 3 in y; b: (3-0)/4 + (3-1)/3
    d = crowding_distance([[0, 3], [1, 2], [3, 1], [4, 0]])
    assert math.isinf(d[0]) and math.isinf(d[3])
    assert d[1] == pytest.approx(3 / 4 + 2 / 3) and d[2] == pytest.approx(3 / 4 + 2 / 3)


def test_hypervolume_2d_and_3d_by_hand():
    # staircase (1,3), (2,2), (3,1) from the origin: 3 + 2 + 1 = 6 unit squares; dominated points add nothing
    assert hypervolume([[1, 3], [2, 2], [3, 1], [1, 1]], reference=[0, 0]) == pytest.approx(6.0)
    assert hypervolume([[1, 3], [2, 2], [3, 1]], reference=[1, 0]) == pytest.approx(2 + 1)  # only x > 1 counts
    assert hypervolume([[-1, 5]], reference=[0, 0]) == 0.0
    # two boxes in 3-D: 2x2x1 and 1x1x2 overlapping in 1x1x1: 4 + 2 - 1 = 5
    assert hypervolume([[2, 2, 1], [1, 1, 2]], reference=[0, 0, 0]) == pytest.approx(5.0)
    # against a Monte-Carlo estimate on random points (3 objectives)
    rng = np.random.default_rng(0)
    points = rng.random((8, 3))
    samples = rng.random((200_000, 3))
    covered = (samples[:, None, :] <= points[None, :, :]).all(axis=2).any(axis=1).mean()
    assert hypervolume(points, reference=[0, 0, 0]) == pytest.approx(covered, abs=0.005)


def test_parse_objective_forms_and_their_scores():
    result = Result({"val_acc": 90.0, "latency_ms": 100.0, "flops": 2e6})
    assert parse_objective("val_acc") == Objective("val_acc")
    # one cost or loss is minimised: the lower value scores higher
    for metric in ("latency_ms", "val_loss"):
        objective = parse_objective(metric)
        assert objective.score(Result({metric: 1.0})) > objective.score(Result({metric: 2.0}))
    reward = parse_objective("mnasnet:latency_ms<=80")
    assert isinstance(reward, MnasNetReward) and not reward.hard and reward.names == ("val_acc", "latency_ms")
    assert reward.score(result) == pytest.approx(90.0 * 1.25 ** -0.07)
    assert parse_objective("mnasnet-hard:latency_ms<=80").score(result) == pytest.approx(72.0)
    pareto = parse_objective("pareto:val_acc,latency_ms,flops")
    assert isinstance(pareto, Pareto) and pareto.multi and pareto.score(result) == 90.0
    assert pareto.values(result) == (90.0, -100.0, -2e6)
    assert pareto.values(Result({"val_acc": 90.0})) is None  # a missing metric: no vector
    assert pareto.values(Result.failed("boom")) is None


@pytest.mark.parametrize("text, field", [("mnasnet:latency_ms<80", "mnasnet:COST<=T"), ("pareto:val_acc", "two or more"),
                                         ("pareto:val_acc,test_acc", "test metrics"), ("frobnicate:x", "allowed"),
                                         ("mnasnet:latency_ms<=0", "target")])
def test_bad_objectives_are_one_line_errors(text, field):
    with pytest.raises(NasforgeError, match=field) as error:
        parse_objective(text)
    assert "\n" not in str(error.value)
