"""The strategies benchmark's measuring path: runs through the real runner, the anytime metric picks the
first best-validation query, and the Optuna peer queries the table as often as asked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # scripts, not a package

from nb201_strategies import anytime_test_acc, earlier_rows, nasforge_run, optuna_run, timed_run  # noqa: E402

from nasforge.estimators.tabular import TabularEstimator  # noqa: E402


def test_anytime_test_acc_reports_the_first_best_validation_query():
    queries = [(70.0, 71.0), (85.0, 80.0), (85.0, 90.0), (60.0, 95.0)]
    assert anytime_test_acc(queries, 1) == 71.0
    assert anytime_test_acc(queries, 4) == 80.0  # the tie at val 85 goes to the earlier query; test 95 is never chosen


def test_runs_are_seeded_and_as_long_as_the_budget(nb201_table):
    table = TabularEstimator(nb201_table)
    first = nasforge_run("evolution", table, seed=1, budget=25)
    assert len(first) == 25 and first == nasforge_run("evolution", table, seed=1, budget=25)
    assert len(optuna_run(optuna.samplers.RandomSampler(seed=0), table, budget=12)) == 12


def test_a_timed_run_of_a_peer_or_a_strategy_returns_its_queries_and_seconds(nb201_table):
    for name in ("optuna-tpe", "local"):
        queries, seconds = timed_run(name, 0, nb201_table, 10)
        assert len(queries) == 10 and seconds > 0


def test_update_keeps_only_other_methods_measured_alike(tmp_path):
    row = {"mean": {"25": 88.0}, "std": {"25": 0.5}, "regret": {"25": 1.0}, "seconds_per_run": 0.1, "seeds": 3}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"budgets": [25], "seeds": 3, "methods": {"random": row, "local": row}}))
    kept = earlier_rows(path, {"budgets": [25], "seeds": 3}, ["local"])
    assert list(kept) == ["random"] and kept["random"]["mean"] == {25: 88.0} and kept["random"]["seeds"] == 3
    assert earlier_rows(path, {"budgets": [25], "seeds": 30}, ["local"]) == {}  # other seeds: nothing kept
    assert earlier_rows(tmp_path / "missing.json", {"budgets": [25], "seeds": 3}, []) == {}


def test_the_warm_started_row_asks_the_best_of_its_pool_by_the_combined_proxy_score_first():
    from nb201_strategies import WARM_TOP, ZERO_COST_SCORES, warm_started

    from nasforge.spaces import create_space

    if not ZERO_COST_SCORES.is_file():
        pytest.skip("no zero-cost scores measured (benchmarks/zero_cost_nb201.py)")
    space = create_space("nb201")
    first, again, other = (warm_started("bananas", space, seed) for seed in (0, 0, 1))
    assert len(first.pool) == WARM_TOP and first.pool == again.pool and first.pool != other.pool
