"""A Gaussian-process performance predictor: scikit-learn's `GaussianProcessRegressor` on architecture
encodings (the GP baseline of BANANAS, White, Neiswanger & Savani, 2021, and of NASBOT-style
Bayesian optimisation).

The kernel is a scaled Matern-5/2 of the Euclidean distance between encodings (for 0/1 path
encodings the square root of the number of paths that differ, BANANAS' path distance) plus white
noise for the evaluations' own noise; its hyperparameters are fitted by maximum marginal likelihood
on each fit. The length scale is kept at 1 or more: two distinct 0/1 encodings are at least 1 apart,
and a shorter scale would leave every pair of architectures nearly uncorrelated.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError


class GPPredictor:
    """`fit(x, y)` then `predict(x) -> (mean, std)`; `seed` seeds the optimiser's restarts.

    `threads` is the number of BLAS threads during fit and predict (restored afterwards): on shared
    cores more threads make these small matrices many times slower.

    >>> x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]); y = np.array([0.0, 1.0, 1.0, 2.0])
    >>> mean, std = GPPredictor(seed=0).fit(x, y).predict(np.array([[0.5, 0.5]]))
    >>> round(float(mean[0]), 2)
    1.0
    """

    def __init__(self, *, seed: int = 0, restarts: int = 0, threads: int = 1) -> None:
        if type(restarts) is not int or restarts < 0:
            raise NasforgeError(f"restarts: expected a non-negative integer, got {restarts!r}")
        if type(threads) is not int or threads < 1:
            raise NasforgeError(f"threads: expected a positive integer, got {threads!r}")
        self.seed = seed
        self.restarts = restarts
        self.threads = threads
        self._model: Any = None  # the fitted sklearn GaussianProcessRegressor

    def fit(self, x: np.ndarray, y: np.ndarray) -> GPPredictor:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or y.shape != (len(x),) or len(y) == 0:
            raise NasforgeError(f"x, y: expected (n, d) encodings and n targets, got shapes {x.shape} and {y.shape}")
        # scikit-learn is imported here: importing it costs seconds, and only this option needs it
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
        from threadpoolctl import threadpool_limits

        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(2.0, (1.0, 1e2), nu=2.5) + WhiteKernel(0.1, (1e-3, 1e1))
        self._model = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=self.restarts,
                                               random_state=self.seed)
        with threadpool_limits(self.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a hyperparameter at its bound is no error here
            self._model.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._model is None:
            raise NasforgeError("predictor: call fit before predict")
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.threads):
            mean, std = self._model.predict(np.asarray(x, dtype=np.float64), return_std=True)
        return mean, std
