"""Error empirical distribution functions (EDFs), the yardstick of design spaces (Radosavovic et al.,
2019, "On Network Design Spaces for Visual Recognition"; 2020, "Designing Network Design Spaces").

F(e) is the (weighted) share of a space's sampled models with error below e: a space whose EDF lies
higher has more good models. `edf_area` sums a whole curve into one number, the mean of F over an
error range, so two spaces compare by one statistic; `complexity_weights` is the papers' normalised
EDF, which reweights the models so that every FLOPs bin counts alike and a space is not credited for
merely sampling bigger models.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nasforge.errors import NasforgeError

__all__ = ["complexity_weights", "edf", "edf_area"]


def _check(errors: Sequence[float], weights: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(errors, dtype=float)
    if e.ndim != 1 or len(e) == 0 or not np.isfinite(e).all():
        raise NasforgeError(f"errors: expected a non-empty list of finite numbers, got {list(errors)!r}")
    w = np.ones_like(e) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != e.shape or (w < 0).any() or not w.sum() > 0:
        raise NasforgeError("weights: expected one non-negative weight per error, not all zero")
    return e, w / w.sum()


def edf(errors: Sequence[float], at: Sequence[float], weights: Sequence[float] | None = None) -> np.ndarray:
    """F(e) = (weighted) share of `errors` strictly below e, for each e in `at`.

    >>> edf([10, 20, 30, 40], [5, 20, 25, 50]).tolist()
    [0.0, 0.25, 0.5, 1.0]
    """
    e, w = _check(errors, weights)
    return (w[None, :] * (e[None, :] < np.asarray(at, dtype=float)[:, None])).sum(1)


def edf_area(errors: Sequence[float], low: float, high: float, weights: Sequence[float] | None = None) -> float:
    """The mean of F(e) over [low, high]: 1 when every error is at most `low`, 0 when all are at least
    `high`; in closed form the (weighted) mean of (high - clip(error, low, high)) / (high - low).

    >>> edf_area([10, 20], 0, 40)  # (30 + 20) / 2 / 40
    0.625
    """
    if not high > low:
        raise NasforgeError(f"error range: expected low < high, got [{low}, {high}]")
    e, w = _check(errors, weights)
    return float((w * (high - np.clip(e, low, high))).sum() / (high - low))


def complexity_weights(flops: Sequence[float], bins: int = 5) -> np.ndarray:
    """Per-model weights that give each of `bins` equal-width bins of log FLOPs (over the models' own
    range) the same total weight, and models within a bin equal shares; empty bins get none."""
    f = np.asarray(flops, dtype=float)
    if f.ndim != 1 or len(f) == 0 or not (f > 0).all():
        raise NasforgeError("flops: expected a non-empty list of positive numbers")
    if type(bins) is not int or bins < 1:
        raise NasforgeError(f"bins: must be a positive integer, got {bins!r}")
    log = np.log(f)
    span = log.max() - log.min()
    which = np.zeros(len(f), dtype=int) if span == 0 else np.minimum((log - log.min()) / span * bins, bins - 1).astype(int)
    counts = np.bincount(which, minlength=bins)
    weights = 1.0 / counts[which]
    return weights / weights.sum()
