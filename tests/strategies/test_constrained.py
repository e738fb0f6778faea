"""Hard limits on params / FLOPs / latency: infeasible candidates are rejected before evaluation, for
every strategy, and the inner strategy is told so; seeded, resumable, with clear errors."""

from __future__ import annotations

import pickle

import pytest
import torch

from nasforge import NasforgeError
from nasforge.data import load_dataset
from nasforge.estimators.tabular import TabularEstimator
from nasforge.estimators.training import TrainingEstimator
from nasforge.hardware import count_params
from nasforge.objective import Objective
from nasforge.runner.config import RunConfig
from nasforge.runner.executors import InlineExecutor
from nasforge.runner.run_dir import select_best
from nasforge.runner.runner import Runner
from nasforge.runner.search import TABLE_INPUT, network_input
from nasforge.runner.store import Store
from nasforge.spaces import create_space
from nasforge.strategies import create_strategy, list_strategies
from nasforge.strategies.constrained import (
    Constrained,
    Constraints,
    model_cost_function,
)
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.random import RandomSearch
from nasforge.testing import check_strategy

# grid_space's MLP on a (1, 4, 4) input with 10 classes has 16w + w + 10w + 10 = 27w + 10 parameters
# and 2 * (16w + 10w) = 52w FLOPs for width w in (8, 16, 32, 64): 900 parameters leave out width 64 only
GRID_INPUT = ((1, 4, 4), 10)
LIMIT = Constraints(max_params=900)
ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def constrained(strategy, constraints=LIMIT, **options):
    return Constrained(strategy, constraints, model_cost_function(strategy.space, *GRID_INPUT, constraints), **options)


def run(strategy, table, path, budget):
    store = Store(path, space=strategy.space.name)
    trials = Runner(strategy=strategy, executor=InlineExecutor(TabularEstimator(table)), store=store,
                    budget=budget).run()
    store.close()
    return trials


def width(arch) -> int:
    return arch.value["width"]


def test_costs_are_hand_counts_of_the_limited_metrics_only(grid_space):
    arch = grid_space.validate({"x0": 0, "x1": 1, "x2": 2, "width": 32})
    before = torch.get_rng_state()
    both = model_cost_function(grid_space, *GRID_INPUT, Constraints(max_params=10**6, max_flops=1e9))(arch)
    assert both == {"params": 27 * 32 + 10, "flops": 52 * 32}
    assert torch.equal(torch.get_rng_state(), before)  # built in a forked RNG
    assert model_cost_function(grid_space, *GRID_INPUT, LIMIT)(arch) == {"params": 874}
    # cheapest first, and no FLOP count once the parameters are over their limit
    over = Constraints(max_params=1, max_flops=1.0)
    assert model_cost_function(grid_space, *GRID_INPUT, over)(arch) == {"params": 874}


def test_nb201_costs_are_the_benchmark_counts():
    space = create_space("nb201")
    costs = model_cost_function(space, (3, 32, 32), 10, Constraints(max_params=1))
    assert costs(space.validate(ALL_CONV)) == {"params": 1_531_546}  # NAS-Bench-201's count for this cell


def test_a_constrained_nb201_run_keeps_the_limit_and_finds_another_best(nb201_table, tmp_path):
    space, limit = create_space("nb201"), 500_000

    def search(constraints, path):
        strategy = create_strategy("evolution", space, seed=3, population_size=10, sample_size=3)
        if constraints is not None:
            strategy = Constrained(strategy, constraints, model_cost_function(space, (3, 32, 32), 10, constraints))
        return strategy, run(strategy, nb201_table, path, budget=30)

    free_strategy, free = search(None, tmp_path / "free.db")
    strategy, trials = search(Constraints(max_params=limit), tmp_path / "limited.db")
    assert len(trials) == 30 and all(t.status == "ok" for t in trials)
    assert all(count_params(space.build(t.arch, (3, 32, 32), 10)) <= limit for t in trials)
    assert strategy.rejected > 0
    free_best, best = select_best(free, Objective()), select_best(trials, Objective())
    assert count_params(space.build(free_best.arch, (3, 32, 32), 10)) > limit  # so the best must differ
    assert best.arch != free_best.arch


def test_the_inner_strategy_is_told_each_rejection(grid_space, grid_table, tmp_path):
    class Recording(RandomSearch):
        def tell(self, arch, result):
            self.told.append((arch, result))

    inner = Recording(grid_space, seed=0)
    inner.told = []
    strategy = constrained(inner)
    trials = run(strategy, grid_table, tmp_path / "runs.db", budget=30)
    refused = [(arch, r) for arch, r in inner.told if not r.ok]
    assert len(refused) == strategy.rejected > 0 and len(inner.told) == 30 + strategy.rejected
    assert all(width(arch) == 64 and r.error == "infeasible: params 1,738 > max_params 900" for arch, r in refused)
    assert all(width(t.arch) != 64 for t in trials)


def test_evolution_never_keeps_an_infeasible_arch(grid_space, grid_table, tmp_path):
    evolution = RegularizedEvolution(grid_space, seed=1, population_size=6, sample_size=3)
    strategy = constrained(evolution)
    trials = run(strategy, grid_table, tmp_path / "runs.db", budget=40)
    assert evolution.asked == len(trials) + strategy.rejected and strategy.rejected > 0
    assert evolution.population and all(width(arch) != 64 for arch, _ in evolution.population)
    assert select_best(trials, Objective()).result.metrics["val_acc"] == 110.0  # the best with width 32


def test_seeded_resumable_and_asynchronous(grid_space, grid_table):
    check_strategy(lambda seed: constrained(create_strategy("evolution", grid_space, seed=seed, population_size=6,
                                                            sample_size=3)), TabularEstimator(grid_table))


def test_kill_and_resume_continues_identically(grid_space, grid_table, tmp_path):
    def fresh():
        return constrained(create_strategy("evolution", grid_space, seed=0, population_size=6, sample_size=3))

    whole = fresh()
    expected = run(whole, grid_table, tmp_path / "whole.db", budget=30)
    run(fresh(), grid_table, tmp_path / "parts.db", budget=11)  # stopped after 11 trials ...
    resumed = fresh()
    trials = run(resumed, grid_table, tmp_path / "parts.db", budget=30)  # ... and resumed by a new process
    summary = lambda ts: [(t.id, t.arch, t.status, t.result.metrics) for t in ts]  # noqa: E731
    assert summary(trials) == summary(expected)
    assert resumed.rejected == whole.rejected > 0 and resumed.cache == whole.cache


def test_state_nests_the_inner_state_and_holds_no_space_or_costs(grid_space, grid_table):
    strategy = constrained(create_strategy("random", grid_space, seed=0))
    table = TabularEstimator(grid_table)
    for _ in range(10):
        arch = strategy.ask()
        strategy.tell(arch, table.evaluate(arch))
    state = pickle.loads(pickle.dumps(strategy.state_dict()))  # the costs function (a closure) would not pickle
    assert set(state) == {"strategy", "cache", "rejected"} and "space" not in state["strategy"]
    copy = constrained(create_strategy("random", grid_space, seed=99))
    copy.load_state_dict(state)
    assert (copy.rejected, copy.cache) == (strategy.rejected, strategy.cache)
    assert [copy.ask() for _ in range(5)] == [strategy.ask() for _ in range(5)]
    with pytest.raises(NasforgeError, match="expected fields"):
        copy.load_state_dict({**state, "extra": 1})


def test_unsatisfiable_constraints_are_a_clear_error(grid_space):
    strategy = constrained(create_strategy("random", grid_space, seed=0), Constraints(max_params=100))
    with pytest.raises(NasforgeError) as error:
        strategy.ask()
    message = str(error.value)
    assert message == ("constraints: 1000 candidates in a row broke them (smallest seen: params 226); "
                       "they look unsatisfiable in space 'grid'")


def test_latency_is_measured_and_limited(grid_space):
    loose = constrained(create_strategy("random", grid_space, seed=0), Constraints(max_latency_ms=1e6))
    arch = loose.ask()
    assert loose.rejected == 0 and set(loose.cache[arch.key]) == {"latency_ms"}
    assert loose.cache[arch.key]["latency_ms"] > 0
    tight = constrained(create_strategy("random", grid_space, seed=0), Constraints(max_latency_ms=1e-9), max_tries=3)
    with pytest.raises(NasforgeError, match="3 candidates in a row .* latency_ms"):
        tight.ask()
    both = constrained(create_strategy("random", grid_space, seed=0), Constraints(max_params=500, max_latency_ms=1e6))
    for _ in range(5):
        both.ask()
    # latency is measured only where the parameters keep their limit
    assert both.rejected > 0 and all(("latency_ms" in c) == (c["params"] <= 500) for c in both.cache.values())


@pytest.mark.parametrize("values, message", [
    ({"max_params": -3}, "max_params: must be > 0, got -3"),
    ({"max_params": 0}, "max_params: must be > 0, got 0"),
    ({"max_params": 1.5}, "max_params: must be a whole number, got 1.5"),
    ({"max_params": True}, "max_params: must be a whole number, got True"),
    ({"max_flops": -1.0}, "max_flops: must be > 0, got -1.0"),
    ({"max_flops": "1e9"}, "max_flops: must be a finite number, got '1e9'"),
    ({"max_latency_ms": float("nan")}, "max_latency_ms: must be a finite number, got nan"),
    ({"max_param": 5}, "constraints: unknown limit 'max_param' (allowed: max_params, max_flops, max_latency_ms)"),
])
def test_bad_constraints_name_the_field(values, message, tmp_path):
    with pytest.raises(NasforgeError) as error:
        Constraints.from_mapping(values)
    assert str(error.value) == message
    with pytest.raises(NasforgeError) as error:
        RunConfig.from_mapping({"out": str(tmp_path), "constraints": values})
    assert str(error.value) == message


def test_bad_wrapper_arguments_are_refused(grid_space):
    with pytest.raises(NasforgeError, match="max_tries"):
        constrained(create_strategy("random", grid_space), max_tries=0)
    with pytest.raises(NasforgeError, match="constraints: expected Constraints"):
        Constrained(create_strategy("random", grid_space), {"max_params": 5}, lambda arch: {})
    strategy = Constrained(create_strategy("random", grid_space), LIMIT, lambda arch: {"flops": 1.0})
    with pytest.raises(NasforgeError, match="costs: the costs function gave no params"):
        strategy.ask()


def test_yaml_limits_are_overridden_one_by_one(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(f"out: {tmp_path / 'run'}\nconstraints: {{max_params: 5, max_flops: 7.0}}\n")
    config = RunConfig.from_yaml(path, constraints={"max_params": 9})
    assert config.constraints == {"max_params": 9, "max_flops": 7.0}


def test_networks_are_costed_for_the_data_they_are_trained_on(grid_table):
    data = load_dataset("digits", seed=0)
    estimator = TrainingEstimator(space=create_space("nb201"), data=data, epochs=1)
    assert network_input(estimator) == (data.input_shape, data.num_classes)
    assert network_input(TabularEstimator(grid_table)) == TABLE_INPUT == ((3, 32, 32), 10)


@pytest.mark.parametrize("name", list_strategies())
def test_every_strategy_runs_constrained(name, grid_space, grid_table, tmp_path):
    try:
        inner = create_strategy(name, grid_space, seed=0)
    except NasforgeError as error:  # a strategy that needs what the grid space lacks
        pytest.skip(f"{name} cannot run on the grid space: {error}")
    strategy = constrained(inner, Constraints(max_params=500))  # widths 8 and 16 (226, 442 parameters) only
    trials = run(strategy, grid_table, tmp_path / "runs.db", budget=10)
    assert len(trials) == 10 and all(t.status == "ok" and width(t.arch) <= 16 for t in trials)
    assert strategy.rejected > 0
