"""Performance predictors: surrogates fitted to (encoding, score) pairs that predict a mean and an
uncertainty for unseen architectures (BANANAS' neural ensemble, a Gaussian process, bagged
gradient-boosted trees).

Every predictor has the same two methods: `fit(x, y)` on (n, d) encodings and n scores, returning
itself, and `predict(x) -> (mean, std)`.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Protocol

import numpy as np

from nasforge.estimators.predictors.ensemble import MLPEnsemble
from nasforge.estimators.predictors.gp import GPPredictor
from nasforge.estimators.predictors.trees import GBTPredictor

__all__ = ["GBTPredictor", "GPPredictor", "MLPEnsemble", "Predictor", "normal_scores"]


class Predictor(Protocol):
    """What a strategy needs of a surrogate model."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> Predictor:
        """Fit to encodings `x` (n, d) and scores `y` (n,)."""

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The predicted mean and standard deviation of each row of `x`."""


def normal_scores(scores: np.ndarray) -> np.ndarray:
    """The normal quantile of (rank - 1/2) / n of each score (ties share their mean rank): targets that
    keep only the order, so a few outliers (e.g. NB201's broken cells near 10 %) do not dominate a fit.

    >>> normal_scores(np.array([70.0, 10.0, 85.0, 70.0])).round(3).tolist()
    [0.0, -1.15, 1.15, 0.0]
    """
    scores = np.asarray(scores, dtype=float)
    ordered = np.sort(scores)
    twice_ranks = np.searchsorted(ordered, scores, "left") + np.searchsorted(ordered, scores, "right")
    return np.array([NormalDist().inv_cdf(r / (2 * len(scores))) for r in twice_ranks])
