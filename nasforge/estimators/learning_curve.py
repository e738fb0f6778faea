"""Learning-curve extrapolation: train the first epochs of the full schedule, predict the final validation accuracy.

After Domhan, Springenberg & Hutter 2015 ("Speeding up automatic hyperparameter optimization of deep
neural networks by extrapolation of learning curves", IJCAI): fit parametric learning-curve families to
the partial curve, extrapolate it to the last epoch, and stop runs whose prediction falls below a
threshold. Instead of their MCMC over a weighted ensemble of 11 families, three monotone 3-parameter
families (their pow3 and log power, and an exponential) are fitted by bounded least squares
(`scipy.optimize.curve_fit`; scipy comes with scikit-learn) and their predictions averaged: from the few
points of an early stop every family fits almost exactly, so residuals cannot choose between them, and
their biases differ (the power laws overshoot a steep start, the exponential levels off early).

The curve fitted is the running best validation accuracy, because that is what the training estimator
reports (the best-validation epoch): it never decreases, so the prediction is clipped to
[best observed, 100].
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator, Result, finite
from nasforge.estimators.training import TrainingEstimator, fidelity_epochs
from nasforge.spaces.base import Arch

__all__ = ["FAMILIES", "LearningCurveEstimator", "extrapolate", "fit_curve"]


def pow3(t: np.ndarray, c: float, a: float, alpha: float) -> np.ndarray:
    """c - a t^-alpha: a power law rising to c."""
    return c - a * t ** -alpha


def exp3(t: np.ndarray, c: float, a: float, b: float) -> np.ndarray:
    """c - a e^(-b t): an exponential approach to c."""
    return c - a * np.exp(-b * t)


def log_power(t: np.ndarray, c: float, a: float, b: float) -> np.ndarray:
    """c / (1 + (t / e^b)^-a): a logistic curve in log t, rising to c (Domhan et al.'s "log power")."""
    return c / (1.0 + (t / np.exp(b)) ** -a)


#: family -> (function, lower bounds, upper bounds, initial guess from (first, best) observed values); accuracies in percent
FAMILIES: dict[str, tuple[Callable[..., np.ndarray], tuple[float, ...], tuple[float, ...],
                          Callable[[float, float], tuple[float, ...]]]] = {
    "pow3": (pow3, (0.0, 0.0, 0.01), (100.0, 1000.0, 5.0),
             lambda first, best: (_asymptote(best), max(_asymptote(best) - first, 1.0), 0.5)),
    "exp3": (exp3, (0.0, 0.0, 0.01), (100.0, 1e4, 5.0),
             lambda first, best: (_asymptote(best), max(_asymptote(best) - first, 1.0) * math.e ** 0.5, 0.5)),
    "log_power": (log_power, (0.0, 0.01, -5.0), (100.0, 10.0, 5.0), lambda first, best: (_asymptote(best), 1.0, 0.0)),
}


def _asymptote(best: float) -> float:
    """An initial guess of the asymptote strictly inside (0, 100): a little above the best observed."""
    return min(max(best + 1.0, 1.0), 99.9)


def fit_curve(family: str, epochs: Sequence[float], values: Sequence[float]) -> np.ndarray | None:
    """The bounded least-squares parameters of `family` through (epochs, values), or None when the fit fails."""
    function, lower, upper, guess = FAMILIES[family]
    t, y = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)  # no covariance from as many points as parameters: not needed
        try:
            params, _ = curve_fit(function, t, y, p0=guess(y[0], y.max()), bounds=(lower, upper), method="trf",
                                  max_nfev=2000)
        except (RuntimeError, ValueError):
            return None
    return params if np.all(np.isfinite(params)) else None


def extrapolate(values: Sequence[float], horizon: int) -> float | None:
    """Predicted best validation accuracy at epoch `horizon` from `values` (val_acc of epochs 1..k), or None
    when no family fits. The mean of the families' predictions, each clipped to [best observed, 100]."""
    best = np.maximum.accumulate(np.asarray(values, dtype=float))
    epochs = np.arange(1, len(best) + 1, dtype=float)
    predictions = []
    for family, (function, *_rest) in FAMILIES.items():
        params = fit_curve(family, epochs, best)
        if params is not None:
            value = float(function(float(horizon), *params))
            if math.isfinite(value):
                predictions.append(min(max(value, float(best[-1])), 100.0))
    return sum(predictions) / len(predictions) if predictions else None


class LearningCurveEstimator(Estimator):
    """Trains the first epochs of `trainer`'s full schedule (T = `trainer.epochs`) and predicts `val_acc` at epoch T.

    `stop_below=None`: trains `min_epochs` epochs (or `fidelity`, at most T) and reports the prediction.
    `stop_below=x`: trains on (up to `fidelity`, default T) while, from `min_epochs` on, the prediction plus
    `margin` stays >= x, and stops as soon as it falls below, reporting the prediction; a run that reaches
    epoch T reports its real result. The epochs are the exact prefix of the T-epoch run (same seed and
    learning rates), so a prediction is compared with the run it stands for.

    Metrics: the trainer's (test ones of the epochs actually trained, never extrapolated), with `val_acc`
    the prediction, `val_acc_observed` the best observed, `epochs` run, `predicted_epochs` (T),
    `extrapolated` (1.0 or 0.0 for a real result) and `fit_failed` (1.0 when no family fitted and `val_acc`
    fell back to the best observed value). `min_epochs` defaults to 5: from 3 epochs of 20 the predictions
    were far off in `benchmarks/learning_curve_digits.py` (mean error 6.4 pp, against 1.8 pp from 5).
    """

    def __init__(self, trainer: TrainingEstimator, *, min_epochs: int = 5, stop_below: float | None = None,
                 margin: float = 0.0) -> None:
        if not isinstance(trainer, TrainingEstimator):
            raise NasforgeError(f"trainer: expected a TrainingEstimator, got {type(trainer).__name__}")
        if trainer.patience is not None:
            raise NasforgeError(f"patience: must be null with learning-curve extrapolation (it cuts the curve; "
                                f"stop early with stop_below), got {trainer.patience!r}")
        if isinstance(min_epochs, bool) or not isinstance(min_epochs, int) or not 3 <= min_epochs <= trainer.epochs:
            raise NasforgeError(f"min_epochs: must be a whole number in [3, epochs = {trainer.epochs}] "
                                f"(a fit needs 3 points), got {min_epochs!r}")
        if stop_below is not None and not (finite(stop_below) and 0.0 <= stop_below <= 100.0):
            raise NasforgeError(f"stop_below: must be null or an accuracy in [0, 100] percent, got {stop_below!r}")
        if not (finite(margin) and margin >= 0.0):
            raise NasforgeError(f"margin: must be a finite number >= 0 (percentage points), got {margin!r}")
        self.trainer, self.min_epochs, self.stop_below, self.margin = trainer, min_epochs, stop_below, margin

    def evaluate(self, arch: Arch, fidelity: float | None = None) -> Result:
        """Train `arch` for up to `fidelity` epochs of the T-epoch schedule and report the predicted `val_acc`."""
        start = time.perf_counter()
        horizon = self.trainer.epochs
        if fidelity is None:
            budget = horizon if self.stop_below is not None else self.min_epochs
        else:
            budget = fidelity_epochs(fidelity)
            if not self.min_epochs <= budget <= horizon:
                raise NasforgeError(f"fidelity: epochs must be in [min_epochs, epochs] = [{self.min_epochs}, {horizon}], "
                                    f"got {fidelity!r}")
        stop = None if self.stop_below is None else self._below
        trained = self.trainer.train(arch, budget, schedule_epochs=horizon, stop=stop)
        metrics = dict(trained.metrics)
        metrics.update(val_acc_observed=metrics["val_acc"], predicted_epochs=float(horizon), extrapolated=0.0,
                       fit_failed=0.0)
        if len(trained.curve) < horizon:
            prediction, fitted = self._predict(trained.curve)
            metrics.update(val_acc=prediction, extrapolated=1.0, fit_failed=float(not fitted))
        return Result(metrics=metrics, fidelity=float(budget), cost_s=time.perf_counter() - start, curve=trained.curve)

    def _predict(self, curve: Sequence[dict[str, float]]) -> tuple[float, bool]:
        """(val_acc predicted at epoch T, whether a fit succeeded): the best observed value when none did."""
        values = [row["val_acc"] for row in curve]
        prediction = extrapolate(values, self.trainer.epochs)
        return (max(values), False) if prediction is None else (prediction, True)

    def _below(self, curve: Sequence[dict[str, float]]) -> bool:
        """The stop hook: from `min_epochs` to T - 1, whether the prediction plus margin is below `stop_below`."""
        if not self.min_epochs <= len(curve) < self.trainer.epochs:
            return False
        return self._predict(curve)[0] + self.margin < self.stop_below
