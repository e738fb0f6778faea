"""Warm start: a pre-ranked pool is evaluated first, and the strategy goes on from its results."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge import NasforgeError
from nasforge.estimators.tabular import TabularEstimator
from nasforge.spaces import create_space
from nasforge.strategies import create_strategy
from nasforge.strategies.warm_start import WarmStart, rank_pool
from nasforge.testing import check_strategy, drive


@pytest.fixture(scope="module")
def nb201():
    return create_space("nb201")


def _pool(space, n: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("name", ["bananas", "evolution", "local", "random"])
def test_warm_started_strategies_pass_the_conformance_suite(name, nb201, nb201_table):
    pool = _pool(nb201, 5)
    check_strategy(lambda seed: WarmStart(create_strategy(name, nb201, seed=seed), pool), TabularEstimator(nb201_table),
                   queries=20)


def test_the_pool_is_asked_first_in_order_then_the_strategy_learns_from_it(nb201, nb201_table):
    table = TabularEstimator(nb201_table)
    pool = rank_pool(_pool(nb201, 40), [table.evaluate(a).metrics["val_acc"] for a in _pool(nb201, 40)], top=10)
    strategy = WarmStart(create_strategy("bananas", nb201, seed=0), pool)
    asked = drive(strategy, table, 12)
    assert asked[:10] == pool
    bananas = strategy.strategy
    assert len(bananas.observed) == 12
    assert bananas.ranked_at >= 10  # its own first asks came from the predictor, not from its random start


def test_a_warm_start_from_the_best_of_a_pool_helps_early(nb201, nb201_table):
    """The best 10 of 200 random cells by the table, then BANANAS: better after 20 queries than BANANAS
    alone, on average over seeds (a ranking that knows the answer is the upper bound of a proxy's)."""
    table = TabularEstimator(nb201_table)

    def best_after(strategy, n=20):
        return max(table.evaluate(a).metrics["val_acc"] for a in drive(strategy, table, n))

    cold, warm = [], []
    for seed in range(3):
        pool = _pool(nb201, 200, seed=100 + seed)
        ranked = rank_pool(pool, [table.evaluate(a).metrics["val_acc"] for a in pool], top=10)
        cold.append(best_after(create_strategy("bananas", nb201, seed=seed)))
        warm.append(best_after(WarmStart(create_strategy("bananas", nb201, seed=seed), ranked)))
    assert np.mean(warm) > np.mean(cold)


def test_bad_pools_and_tops_are_named(nb201, grid_space):
    with pytest.raises(NasforgeError, match=r"pool\[0\]"):
        WarmStart(create_strategy("random", nb201), [grid_space.sample(np.random.default_rng(0))])
    with pytest.raises(NasforgeError, match="top"):
        rank_pool(_pool(nb201, 3), [1.0, 2.0, 3.0], top=0)
    with pytest.raises(NasforgeError, match="scores"):
        rank_pool(_pool(nb201, 3), [1.0], top=1)
    assert rank_pool(_pool(nb201, 3), [1.0, 3.0, 2.0], top=2) == [_pool(nb201, 3)[1], _pool(nb201, 3)[2]]
