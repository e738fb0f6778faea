"""The ask/tell loop in-process: budgets, failures recorded, exact continuation from the store."""

from __future__ import annotations

import pytest

from nasforge import NasforgeError
from nasforge.estimators.tabular import TabularEstimator
from nasforge.objective import Objective
from nasforge.runner.executors import InlineExecutor, ProcessExecutor
from nasforge.runner.run_dir import select_best
from nasforge.runner.runner import Runner
from nasforge.runner.store import Store
from nasforge.strategies import create_strategy


def _run(space, table, path, budget, seed=0, executor=None, strategy="evolution"):
    store = Store(path, space=space.name)
    options = {"population_size": 6, "sample_size": 3} if strategy == "evolution" else {}
    runner = Runner(strategy=create_strategy(strategy, space, seed=seed, **options),
                    executor=executor or InlineExecutor(TabularEstimator(table)), store=store, budget=budget)
    trials = runner.run()
    store.close()
    return trials


def _summary(trials):
    return [(t.id, t.arch.key, t.status, t.result.metrics if t.result else None) for t in trials]


def test_runs_the_budget_and_records_every_trial(grid_space, grid_table, tmp_path):
    trials = _run(grid_space, grid_table, tmp_path / "runs.db", budget=30)
    assert [t.id for t in trials] == list(range(30))
    assert all(t.status == "ok" and t.result.metrics["val_acc"] >= 0 for t in trials)
    best = select_best(trials, Objective())
    assert best.result.metrics["val_acc"] == max(t.result.metrics["val_acc"] for t in trials)


def test_a_failing_trial_is_recorded_and_the_search_goes_on(grid_space, grid_table, tmp_path):
    lines = grid_table.read_text().splitlines()
    holed = tmp_path / "holed.csv"
    holed.write_text("\n".join(lines[:1] + lines[1::2]) + "\n")  # every other architecture missing
    trials = _run(grid_space, holed, tmp_path / "runs.db", budget=30, strategy="random")
    failed = [t for t in trials if t.status == "failed"]
    assert len(trials) == 30 and 0 < len(failed) < 30
    assert all("not in the table" in t.result.error for t in failed)


def test_resume_continues_exactly_like_an_uninterrupted_run(grid_space, grid_table, tmp_path):
    whole = _run(grid_space, grid_table, tmp_path / "whole.db", budget=40)
    _run(grid_space, grid_table, tmp_path / "parts.db", budget=17)  # stopped after 17 trials ...
    resumed = _run(grid_space, grid_table, tmp_path / "parts.db", budget=40, seed=0)  # ... and resumed
    assert _summary(resumed) == _summary(whole)


def test_resume_with_another_seed_is_refused(grid_space, grid_table, tmp_path):
    store = Store(tmp_path / "runs.db", space=grid_space.name)
    store.add_trial(create_strategy("random", grid_space, seed=0).ask(), None)  # killed before any result: no snapshot
    runner = Runner(strategy=create_strategy("random", grid_space, seed=1),
                    executor=InlineExecutor(TabularEstimator(grid_table)), store=store, budget=5)
    with pytest.raises(NasforgeError, match="resume: the strategy proposed"):
        runner.run()


def test_resume_reruns_a_trial_that_was_running(grid_space, grid_table, tmp_path):
    whole = _run(grid_space, grid_table, tmp_path / "whole.db", budget=12)
    _run(grid_space, grid_table, tmp_path / "parts.db", budget=5)
    store = Store(tmp_path / "parts.db", space=grid_space.name)
    store.add_trial(whole[5].arch, None)  # asked, then the process died before the result
    store.close()
    assert _summary(_run(grid_space, grid_table, tmp_path / "parts.db", budget=12)) == _summary(whole)


def test_worker_processes_run_every_trial_once(grid_space, grid_table, tmp_path):
    executor = ProcessExecutor(TabularEstimator(grid_table), workers=2)
    trials = _run(grid_space, grid_table, tmp_path / "runs.db", budget=16, executor=executor)
    assert [t.id for t in trials] == list(range(16))
    assert all(t.status == "ok" for t in trials)


@pytest.mark.parametrize("kwargs, field", [({"budget": -1}, "budget"), ({}, "budget"), ({"budget": 3, "max_seconds": 0}, "max_seconds")])
def test_bad_budgets_are_refused(grid_space, grid_table, tmp_path, kwargs, field):
    with pytest.raises(NasforgeError, match=field):
        Runner(strategy=create_strategy("random", grid_space), executor=InlineExecutor(TabularEstimator(grid_table)),
               store=Store(tmp_path / "runs.db", space="grid"), **kwargs)
