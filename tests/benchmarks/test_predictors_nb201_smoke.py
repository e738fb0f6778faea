"""The predictors benchmark's measuring path: held-out and training architectures are disjoint and
seeded, every predictor is measured at every size, and the summary and table read what was measured."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # scripts, not a package

from predictors_nb201 import PREDICTORS, load, measure_seed, report, split, summarize


@pytest.fixture(scope="module")
def data(nb201_table):
    return load(nb201_table)


def test_held_out_and_pool_are_disjoint_and_seeded():
    test, pool = split(15625, seed=0, held_out=1000, pool=400)
    assert len(set(test)) == 1000 and len(set(pool)) == 400 and not set(test) & set(pool)
    again, _ = split(15625, seed=0, held_out=1000, pool=400)
    other, _ = split(15625, seed=1, held_out=1000, pool=400)
    np.testing.assert_array_equal(test, again)
    assert not np.array_equal(test, other)


def test_every_predictor_ranks_held_out_archs_on_a_tiny_budget(data):
    assert data.encodings["path"].shape == (15625, 84) and data.encodings["onehot"].shape == (15625, 30)
    runs = [measure_seed(data, seed, PREDICTORS, sizes=(30, 60), held_out=200) for seed in (0, 1)]
    for run in runs:
        assert list(run) == list(PREDICTORS)
        for row in run.values():
            assert list(row) == [30, 60]
            for rho, tau, seconds in row.values():
                assert -1 <= rho <= 1 and -1 <= tau <= 1 and seconds > 0
                assert rho > 0.2 and tau > 0.1  # trained on 30 cells, each already ranks the held-out ones
    results = summarize(runs)
    assert results["seeds"] == 2 and results["encodings"]["gbt"] == "path"
    assert results["spearman"]["gbt"]["60"] == pytest.approx(np.mean([run["gbt"][60][0] for run in runs]))
    assert results["kendall_std"]["random_forest"]["30"] >= 0
    table = report(results)
    assert sum(line.startswith("| ") for line in table.splitlines()) == 1 + len(PREDICTORS)  # header and a row each
    assert "Spearman @60" in table


def test_proxy_features_come_from_the_measured_cells(nb201_table):
    from predictors_nb201 import WITH_PROXIES, ZC_SCORES

    if not ZC_SCORES.is_file():
        pytest.skip("no zero-cost scores measured (benchmarks/zero_cost_nb201.py)")
    with_proxies = load(nb201_table, ZC_SCORES)
    assert with_proxies.encodings["zc"].shape[1] == 11 and 0 <= with_proxies.encodings["zc"].min() <= 1
    assert with_proxies.encodings["path+zc"].shape[1] == with_proxies.encodings["path"].shape[1] + 11
    run = measure_seed(with_proxies, 0, {k: WITH_PROXIES[k] for k in ("gp+zc", "gp")}, sizes=(30,), held_out=200)
    assert run["gp+zc"][30][0] > run["gp"][30][0]  # the proxies carry what 30 labels cannot
