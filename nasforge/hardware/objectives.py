"""Accuracy against hardware cost: the MnasNet reward, Pareto fronts and the hypervolume.

Every function here takes points as rows of numbers that are all to be MAXIMISED (negate a cost first):
one convention, so that "a dominates b" means a >= b everywhere and a > b somewhere.

>>> mnasnet_reward(75.0, 80.0, target=80.0)  # on target: the accuracy itself
75.0
>>> pareto_front([[1, 5], [2, 4], [1, 4], [0, 6]])
[0, 1, 3]
>>> hypervolume([[1, 2], [2, 1]], reference=[0, 0])
3.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nasforge.errors import NasforgeError

__all__ = ["HARD", "SOFT", "crowding_distance", "hypervolume", "mnasnet_reward", "non_dominated_sort",
           "pareto_front"]

#: (alpha, beta) of the MnasNet reward (Tan et al., 2019, "MnasNet", section 3): the soft setting trades
#: accuracy for latency smoothly on both sides of the target; the hard one ignores latency under the
#: target and punishes it steeply above
SOFT = (-0.07, -0.07)
HARD = (0.0, -1.0)


def mnasnet_reward(accuracy: float, cost: float, *, target: float, alpha: float = SOFT[0],
                   beta: float = SOFT[1]) -> float:
    """ACC(m) x (LAT(m) / T)^w with w = `alpha` if LAT(m) <= T else `beta` (MnasNet, eq. 2).

    `cost` (e.g. latency in ms) and `target` T share a unit and must be > 0.
    """
    if not target > 0:
        raise NasforgeError(f"target: must be > 0, got {target!r}")
    if not cost > 0:
        raise NasforgeError(f"cost: must be > 0 for the MnasNet reward, got {cost!r}")
    w = alpha if cost <= target else beta
    return float(accuracy * (cost / target) ** w)


def _points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    array = np.asarray(points, dtype=float)
    if array.ndim != 2 or (array.size and not np.isfinite(array).all()):
        raise NasforgeError(f"points: expected rows of finite numbers (n x m), got shape {array.shape}")
    return array


def non_dominated_sort(points: Sequence[Sequence[float]] | np.ndarray) -> list[list[int]]:
    """Row indices grouped into fronts, best first (Deb et al., 2002, "NSGA-II": front 0 is the Pareto
    front, front k is non-dominated once fronts 0..k-1 are removed). Equal points share a front."""
    p = _points(points)
    geq = (p[:, None, :] >= p[None, :, :]).all(axis=2)
    gt = (p[:, None, :] > p[None, :, :]).any(axis=2)
    dominates = geq & gt  # dominates[i, j]: row i dominates row j
    count = dominates.sum(axis=0)  # how many rows dominate each row
    fronts, current = [], [i for i in range(len(p)) if count[i] == 0]
    while current:
        fronts.append(current)
        for i in current:
            count[dominates[i]] -= 1
        count[current] = -1
        current = [j for j in range(len(p)) if count[j] == 0]
    return fronts


def pareto_front(points: Sequence[Sequence[float]] | np.ndarray) -> list[int]:
    """Indices of the non-dominated rows, in row order."""
    fronts = non_dominated_sort(points)
    return sorted(fronts[0]) if fronts else []


def crowding_distance(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row within its set: the sum over objectives of the gap between
    its two neighbours, normalised by the objective's range; the extremes get infinity."""
    p = _points(points)
    n, m = p.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(p[:, k], kind="stable")
        span = p[order[-1], k] - p[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (p[order[2:], k] - p[order[:-2], k]) / span
    return distance


def hypervolume(points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]) -> float:
    """The volume dominated by `points` and bounded by `reference` (worse than every point worth counting;
    points not strictly better than it in every objective add nothing).

    Exact in any dimension, by slicing along the last objective (While et al., 2006, "HSO"): fast for
    the two- and three-objective fronts of a search (O(n^2) in 2-D), exponential in the dimension.
    """
    p = _points(points)
    ref = np.asarray(reference, dtype=float)
    if ref.ndim != 1 or (p.size and len(ref) != p.shape[1]) or not np.isfinite(ref).all():
        raise NasforgeError(f"reference: expected {p.shape[1] if p.size else 'm'} finite numbers, got {list(ref)}")
    p = p[(p > ref).all(axis=1)] if p.size else p
    return float(_slice_volume(p, ref)) if len(p) else 0.0


def _slice_volume(p: np.ndarray, ref: np.ndarray) -> float:
    if p.shape[1] == 1:
        return float(p[:, 0].max() - ref[0])
    p = p[np.argsort(-p[:, -1], kind="stable")]
    levels = np.append(p[:, -1], ref[-1])
    volume = 0.0
    for i in range(len(p)):  # between levels i and i+1, the points 0..i cover the slice
        height = levels[i] - levels[i + 1]
        if height > 0:
            volume += height * _slice_volume(p[: i + 1, :-1], ref[:-1])
    return volume
