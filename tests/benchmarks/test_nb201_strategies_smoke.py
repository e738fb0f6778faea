"""The strategies benchmark's measuring path: runs through the real runner, the anytime metric picks the
first best-validation query, and the Optuna peer queries the table as often as asked."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # scripts, not a package

from nb201_strategies import anytime_test_acc, nasforge_run, optuna_run  # noqa: E402

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
