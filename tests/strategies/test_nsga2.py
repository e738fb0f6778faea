"""NSGA-II: elitist replacement by rank then crowding, parents by tournament, each architecture asked once,
and on the NB201 table a better front than random search at the same budget."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.estimators.tabular import TabularEstimator
from nasforge.hardware.objectives import hypervolume
from nasforge.objective import parse_objective
from nasforge.spaces import create_space
from nasforge.strategies import create_strategy
from nasforge.strategies.nsga2 import rank_and_crowding
from nasforge.testing.conformance import drive

PARETO = parse_objective("pareto:val_acc,latency_ms")


def test_rank_and_crowding_by_hand():
    rank, crowd = rank_and_crowding([[3, -3], [2, -2], [1, -1], [1, -4], [2, -3]])
    # front: the first three; [2,-3] is dominated by [2,-2] (and [3,-3]); [1,-4] by [2,-3] as well
    assert list(rank) == [0, 0, 0, 2, 1]
    # the middle of the front: neighbours 2 apart in each objective, each range 2
    assert np.isinf(crowd[0]) and np.isinf(crowd[2]) and crowd[1] == pytest.approx(2 / 2 + 2 / 2)


def test_the_population_keeps_the_best_by_rank_then_crowding(grid_space):
    strategy = create_strategy("nsga2", grid_space, objective=PARETO, population_size=3)
    archs = [strategy.ask() for _ in range(4)]
    told = [(90, 10), (80, 5), (70, 1), (60, 20)]  # the last is dominated by the first: it is dropped
    for arch, (acc, ms) in zip(archs, told):
        strategy.tell(arch, Result({"val_acc": acc, "latency_ms": ms}))
    assert [a for a, _ in strategy.population] == archs[:3]
    strategy.tell(strategy.ask(), Result.failed("boom"))  # a failure never enters the population
    assert len(strategy.population) == 3


def test_within_the_last_front_the_most_crowded_is_dropped(grid_space):
    strategy = create_strategy("nsga2", grid_space, objective=PARETO, population_size=3)
    archs = [strategy.ask() for _ in range(4)]
    # all four non-dominated; crowding (acc range 20, latency range 9): 70 and 90 are extremes (inf),
    # 80 has 15/20 + 7/9 = 1.53, 85 has 10/20 + 5/9 = 1.06: 85 is the most crowded and goes
    for arch, (acc, ms) in zip(archs, [(90, 10), (80, 5), (70, 1), (85, 8)]):
        strategy.tell(arch, Result({"val_acc": acc, "latency_ms": ms}))
    assert [a for a, _ in strategy.population] == archs[:3]


def test_every_architecture_is_asked_once(grid_space, grid_table):
    strategy = create_strategy("nsga2", grid_space, seed=0, population_size=8)
    asked = drive(strategy, TabularEstimator(grid_table), 120)
    assert len({a.key for a in asked}) == 120


def test_bad_options_are_refused():
    space = create_space("nb201")
    with pytest.raises(NasforgeError, match="population_size"):
        create_strategy("nsga2", space, population_size=1)
    with pytest.raises(NasforgeError, match="crossover_prob"):
        create_strategy("nsga2", space, crossover_prob=1.5)


@pytest.mark.parametrize("name", ["nsga2", "mo-evolution"])
def test_a_better_front_than_random_search_on_nb201(name, nb201_table):
    """val_acc against the cell's convolution multiply-adds per pixel and channel (1 per 1x1, 9 per 3x3 edge:
    proportional to the network's FLOPs) after 150 queries, mean hypervolume of 3 seeds."""
    from nasforge.spaces.nb201 import parse_arch

    table = TabularEstimator(nb201_table)
    space = create_space("nb201")

    class WithMacs:
        def evaluate(self, arch, fidelity=None):
            ops = parse_arch(arch.key)
            macs = ops.count("nor_conv_1x1") + 9 * ops.count("nor_conv_3x3")
            return Result({**table.evaluate(arch).metrics, "flops": float(macs)})

    objective = parse_objective("pareto:val_acc,flops")

    def hv(strategy_name, seed):
        asked = drive(create_strategy(strategy_name, space, objective=objective, seed=seed), WithMacs(), 150)
        values = [objective.values(WithMacs().evaluate(a)) for a in asked]
        return hypervolume([(acc / 100, 1 + macs / 54) for acc, macs in values], [0, 0])  # 54: six 3x3 edges

    ours, theirs = np.mean([hv(name, s) for s in range(3)]), np.mean([hv("random", s) for s in range(3)])
    assert ours > theirs
