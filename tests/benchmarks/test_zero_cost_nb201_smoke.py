"""The zero-cost benchmark's measuring path: scores cached per architecture and read back, NaN ranked last."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # scripts, not a package

from common import DEFAULT_DATA  # noqa: E402
from zero_cost_nb201 import read_scores, sample_archs, score_all, spearman  # noqa: E402

from nasforge.estimators.tabular import TabularEstimator  # noqa: E402
from nasforge.estimators.zero_cost import PROXIES  # noqa: E402


def test_an_undefined_proxy_ranks_lowest():
    targets = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(np.array([math.nan, 2.0, 3.0, 4.0]), targets) == pytest.approx(1.0)
    assert spearman(np.array([4.0, math.nan, 2.0, 1.0]), targets) < 0


def test_scores_are_cached_and_read_back(nb201_table, tmp_path):
    if not DEFAULT_DATA.is_file():
        pytest.skip(f"{DEFAULT_DATA} is not there")
    keys = sample_archs(TabularEstimator(nb201_table), 2, seed=0)
    assert keys == sample_archs(TabularEstimator(nb201_table), 2, seed=0)
    cache = tmp_path / "scores.csv"
    scores = score_all(keys, DEFAULT_DATA, cache, workers=1)
    assert list(scores) == keys and set(scores[keys[0]]) == set(PROXIES)
    again = read_scores(cache)
    for key in keys:
        assert all(again[key][n] == scores[key][n] or math.isnan(scores[key][n]) for n in PROXIES)
    assert score_all(keys, DEFAULT_DATA, cache, workers=1) == again  # nothing left to compute: read, not rescored
