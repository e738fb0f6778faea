"""Performance predictors: surrogates fitted to (encoding, score) pairs that predict a mean and an
uncertainty for unseen architectures (BANANAS' neural ensemble, a Gaussian process, bagged
gradient-boosted trees).

Every predictor has the same two methods: `fit(x, y)` on (n, d) encodings and n scores, returning
itself, and `predict(x) -> (mean, std)`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from nasforge.estimators.predictors.ensemble import MLPEnsemble
from nasforge.estimators.predictors.gp import GPPredictor
from nasforge.estimators.predictors.trees import GBTPredictor

__all__ = ["GBTPredictor", "GPPredictor", "MLPEnsemble", "Predictor"]


class Predictor(Protocol):
    """What a strategy needs of a surrogate model."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> Predictor:
        """Fit to encodings `x` (n, d) and scores `y` (n,)."""

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The predicted mean and standard deviation of each row of `x`."""
