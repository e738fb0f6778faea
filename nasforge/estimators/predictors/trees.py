"""Gradient-boosted trees as a performance predictor with uncertainty: scikit-learn's
`HistGradientBoostingRegressor` (Friedman, 2001, "Greedy function approximation: a gradient boosting
machine") on architecture encodings.

White et al. (2021, "How powerful are performance predictors in neural architecture search?") found
boosted trees among the best predictors once a search has a few dozen to a few hundred results. A
single boosted model gives no uncertainty, so `members` models are each fitted on their own bootstrap
resample of the data (bagging, as BANANAS' MLP ensemble): their mean is the prediction and their
spread the uncertainty an acquisition function needs.

By default the models learn the targets' empirical quantiles (their ranks scaled to [0, 1]), and each
model's predictions are mapped back through the training targets' quantile function: accuracies have a
long tail of broken architectures (NAS-Bench-201: ~10% beside a bulk at 60-85%), and on raw values the
squared error spends the trees' splits on that tail. On NAS-Bench-201 this raised the held-out Spearman
by 0.01-0.05 at 50-400 training architectures (benchmarks/predictors_nb201.py, tuning seeds).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nasforge.errors import NasforgeError

__all__ = ["GBTPredictor"]


class GBTPredictor:
    """`members` boosted models on bootstrap resamples; `fit(x, y)` then `predict(x) -> (mean, std)`.

    Each model adds `max_iter` trees of at most `max_leaf_nodes` leaves with at least
    `min_samples_leaf` results each, shrunk by `learning_rate` and penalised by `l2_regularization`;
    `quantile_targets` fits them to the targets' quantiles (see above). The defaults suit the 50-400
    results of a search (tuned on NAS-Bench-201, see benchmarks/predictors_nb201.py): leaves of single
    results kept in check by the L2 penalty, 100 trees of 16 leaves.

    Seeded by `seed` through its own `numpy.random.Generator` (resamples and each model's
    `random_state`); the global RNG is never touched. `threads` is the number of OpenMP/BLAS threads
    during fit and predict (restored afterwards): on shared cores more threads cost many times over.

    >>> x = np.random.default_rng(0).integers(0, 2, (100, 5)); y = x @ np.arange(5.0)
    >>> mean, std = GBTPredictor(seed=0).fit(x, y).predict(x)
    >>> bool(np.corrcoef(mean, y)[0, 1] > 0.9)
    True
    """

    def __init__(self, *, members: int = 5, learning_rate: float = 0.1, max_iter: int = 100,
                 max_leaf_nodes: int = 16, min_samples_leaf: int = 1, l2_regularization: float = 3.0,
                 quantile_targets: bool = True, seed: int = 0, threads: int = 1) -> None:
        for name, value, least in [("members", members, 1), ("max_iter", max_iter, 1),
                                   ("max_leaf_nodes", max_leaf_nodes, 2), ("min_samples_leaf", min_samples_leaf, 1),
                                   ("seed", seed, 0), ("threads", threads, 1)]:
            if type(value) is not int or value < least:
                raise NasforgeError(f"{name}: expected an integer >= {least}, got {value!r}")
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not 0 < learning_rate <= 1:
            raise NasforgeError(f"learning_rate: expected a number in (0, 1], got {learning_rate!r}")
        if isinstance(l2_regularization, bool) or not isinstance(l2_regularization, (int, float)) or not l2_regularization >= 0:
            raise NasforgeError(f"l2_regularization: expected a non-negative number, got {l2_regularization!r}")
        if type(quantile_targets) is not bool:
            raise NasforgeError(f"quantile_targets: expected true or false, got {quantile_targets!r}")
        self.members = members
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.quantile_targets = quantile_targets
        self.seed = seed
        self.threads = threads
        self._models: list[Any] = []  # the fitted sklearn HistGradientBoostingRegressors
        self._quantiles: Any = None  # the sklearn QuantileTransformer fitted to the targets, if used
        self._features = 0  # the width of the encodings fitted on

    def fit(self, x: np.ndarray, y: np.ndarray) -> GBTPredictor:
        """Fit every member to its own bootstrap resample of encodings `x` (n, d) and targets `y` (n,)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or y.shape != (len(x),) or len(y) == 0:
            raise NasforgeError(f"x, y: expected (n, d) encodings and n targets, got shapes {x.shape} and {y.shape}")
        # scikit-learn is imported here: importing it costs seconds, and only this predictor needs it
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.preprocessing import QuantileTransformer
        from threadpoolctl import threadpool_limits

        n = len(y)
        quantiles = QuantileTransformer(n_quantiles=n).fit(y[:, None]) if self.quantile_targets else None
        target = quantiles.transform(y[:, None])[:, 0] if quantiles is not None else y
        rng = np.random.default_rng(self.seed)
        models = []
        with threadpool_limits(self.threads):
            for _ in range(self.members):
                picks = rng.integers(n, size=n)
                model = HistGradientBoostingRegressor(
                    learning_rate=self.learning_rate, max_iter=self.max_iter, max_leaf_nodes=self.max_leaf_nodes,
                    min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
                    early_stopping=False,  # every member grows `max_iter` trees: no validation split of few results
                    random_state=int(rng.integers(2**31)))
                models.append(model.fit(x[picks], target[picks]))
        self._models, self._quantiles, self._features = models, quantiles, x.shape[1]
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The members' mean prediction and their standard deviation, per row of `x`."""
        if not self._models:
            raise NasforgeError("predictor: call fit before predict")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self._features:
            raise NasforgeError(f"x: expected (n, {self._features}) encodings like those fitted on, got shape {x.shape}")
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.threads):
            out = np.stack([model.predict(x) for model in self._models])
        if self._quantiles is not None:  # each member's quantiles back to target units, then their mean and spread
            out = self._quantiles.inverse_transform(out.reshape(-1, 1)).reshape(out.shape)
        return out.mean(0), out.std(0)
