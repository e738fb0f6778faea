"""The Pareto benchmark's measuring path: FLOPs by op counts agree with counting each network, the
normalised hypervolume by hand, and seeded runs of the budget's length for ours and the Optuna peer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # scripts, not a package

from pareto_nb201 import WithFlops, cell_flops, nasforge_run, normalised_hv, optuna_run  # noqa: E402

from nasforge.estimators.tabular import TabularEstimator  # noqa: E402
from nasforge.hardware import count_flops  # noqa: E402
from nasforge.spaces import create_space  # noqa: E402

KEYS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|",
        "|none~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"]


def test_flops_by_op_counts_are_the_counted_flops():
    space = create_space("nb201")
    flops = cell_flops(KEYS)
    assert flops[KEYS[0]] == 440_239_360  # the all-3x3 cell: 2 x NAS-Bench-201's 220.1 M multiply-adds (minus biases)
    for key in KEYS[1:]:  # one conv 1x1 and one pool each, at other positions: the same count, measured again
        assert flops[key] == count_flops(space.build(space.validate(key), (3, 32, 32), 10), (3, 32, 32))
    assert flops[KEYS[1]] == flops[KEYS[2]]


def test_normalised_hypervolume_by_hand():
    # (90 %, 25 % of the largest FLOPs) alone: 0.9 x 0.75; a dominated second point adds nothing
    assert normalised_hv([(90.0, 25.0), (80.0, 50.0)], max_flops=100.0) == pytest.approx(0.675)
    assert normalised_hv([(90.0, 25.0), (95.0, 50.0)], max_flops=100.0) == pytest.approx(0.9 * 0.75 + 0.05 * 0.5)


def test_runs_are_seeded_and_as_long_as_the_budget(nb201_table):
    table = TabularEstimator(nb201_table)
    estimator = WithFlops(table, _FlopsOfAll())
    first = nasforge_run("nsga2", estimator, seed=1, budget=25)
    assert len(first) == 25 and first == nasforge_run("nsga2", estimator, seed=1, budget=25)
    assert len(optuna_run(0, estimator, budget=12)) == 12


class _FlopsOfAll(dict):
    """FLOPs for any key without counting: a stand-in cost for the run-length checks (the counts are tested above)."""

    def __missing__(self, key):
        return 1.0 + key.count("conv")
