"""Zero-cost estimation: score an architecture by proxies of its untrained network, in a fraction of a
second instead of minutes of training."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from nasforge.data.datasets import Dataset
from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator, Result
from nasforge.estimators.training import trial_seed
from nasforge.estimators.zero_cost.combined import CombinedScore
from nasforge.estimators.zero_cost.compute import PROXIES, ProxyScores, compute_proxies
from nasforge.spaces.base import Arch, SearchSpace
from nasforge.threads import torch_threads

__all__ = ["DEFAULT_COMBINED", "ZeroCostEstimator"]


#: the proxies the combined score `zc_score` aggregates unless told otherwise: the best data-dependent
#: proxy and the size baseline. Chosen on a calibration sample of NAS-Bench-201 (92 cells of seed 1,
#: disjoint from the benchmark's): Spearman with val_acc 0.66, against 0.59 for jacob_cov + naswot +
#: synflow + params, and the best of the top 5 of 50 random cells 82.3 % against 79.0 %. No combination
#: there ranked above jacob_cov alone (0.73): see benchmarks/results/zero_cost_nb201.md.
DEFAULT_COMBINED = ("jacob_cov", "params")


class ZeroCostEstimator(Estimator):
    """Metrics: each proxy of `proxies` by name (NaN where undefined for the architecture) and, unless
    `combine` is empty, `zc_score`: the equally weighted mean percentile of the proxies `combine`
    among `reference` random architectures of the space (scored once, on first use).

    Every architecture is scored on the same `batch_size` training images, drawn with `seed`; its
    network is initialised from a seed hashed from `seed` and its key, so a score is a pure function
    of (seed, architecture).
    """

    def __init__(self, *, space: SearchSpace, data: Dataset, proxies: Sequence[str] | None = None,
                 batch_size: int = 64, seed: int = 0, combine: Sequence[str] = DEFAULT_COMBINED,
                 reference: int = 32, threads: int | None = None) -> None:
        if not isinstance(space, SearchSpace):
            raise NasforgeError(f"space: expected a SearchSpace, got {type(space).__name__}")
        if not isinstance(data, Dataset):
            raise NasforgeError(f"data: expected a Dataset (nasforge.data.load_dataset), got {type(data).__name__}")
        for name, value in (("batch_size", batch_size), ("reference", reference), ("threads", threads or 1)):
            if type(value) is not int or value < 1:
                raise NasforgeError(f"{name}: must be a whole number >= 1, got {value!r}")
        self.proxies = list(PROXIES) if proxies is None else list(proxies)
        for name in [*self.proxies, *(combine or ())]:
            if name not in PROXIES:
                raise NasforgeError(f"proxies: unknown '{name}' (allowed: {', '.join(PROXIES)})")
        self.space, self.data, self.seed, self.threads = space, data, seed, threads
        self.combine = CombinedScore(list(combine)) if combine else None
        self.reference = reference
        rows = np.random.default_rng(seed).choice(len(data.y_train), min(batch_size, len(data.y_train)), replace=False)
        self.x, self.y = data.x_train[rows], data.y_train[rows]

    @property
    def metric_names(self) -> list[str]:
        """The metrics `evaluate` reports."""
        return [*self.proxies, *(["zc_score"] if self.combine else [])]

    def scores(self, arch: Arch, names: Sequence[str] | None = None) -> ProxyScores:
        """The proxies `names` (default: the estimator's and those it combines) of `arch`'s untrained network."""
        names = names or list(dict.fromkeys([*self.proxies, *(self.combine.names if self.combine else ())]))
        seed = trial_seed(self.seed, arch.key)
        with torch_threads(self.threads or torch.get_num_threads()), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.space.build(self.space.check(arch), self.data.input_shape, self.data.num_classes)
            return compute_proxies(model, self.x, self.y, names, seed=seed)

    def evaluate(self, arch: Arch, fidelity: float | None = None) -> Result:
        start = time.perf_counter()
        scores = self.scores(arch)
        metrics = {name: scores.values[name] for name in self.proxies}
        if self.combine is not None:
            metrics["zc_score"] = self._combined().score(scores.values)
        return Result(metrics=metrics, cost_s=time.perf_counter() - start)

    def _combined(self) -> CombinedScore:
        """The combined score, its reference set scored on first use."""
        if not self.combine.has_reference:
            rng = np.random.default_rng(self.seed)
            archs = [self.space.sample(rng) for _ in range(self.reference)]
            self.combine.set_reference([self.scores(a, self.combine.names).values for a in archs])
        return self.combine
