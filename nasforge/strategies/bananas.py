"""BANANAS: Bayesian optimisation with a neural-ensemble predictor (White, Neiswanger & Savani, 2021,
"BANANAS: Bayesian Optimization with Neural Architectures for Neural Architecture Search").

After `initial` random architectures, each ask with a new result to learn from fits a predictor to
every result so far (an ensemble of MLPs on the path encoding by default, a Gaussian process as the
alternative), draws up to `candidates` new architectures by mutating the best ones found (the
paper's acquisition optimisation) and `random_candidates` random ones, and proposes the candidate
the acquisition function rates highest: independent Thompson sampling (one draw from each
candidate's predicted Gaussian, the paper's choice), upper confidence bound or expected improvement.

Where this differs from the paper, and why (measured on the NAS-Bench-201 CIFAR-10 table, see
`benchmarks/nb201_strategies.py`):
- one proposal per fit instead of batches of 10, so every result informs the next proposal; the
  ensemble then continues from its earlier weights (`MLPEnsemble.refit_steps`) rather than
  training afresh, which is what makes a fit per result affordable;
- the predictor learns the normal scores of the results (their ranks mapped through the inverse
  normal CDF, the Gaussian copula of Salinas et al., 2020) instead of the raw metric: a handful of
  broken networks at chance accuracy no longer dominate the loss, and the differences among the best
  architectures, which decide the search, are spread out;
- ensemble members train on bootstrap resamples, for a wider spread far from the data;
- random architectures join the mutations as candidates: with mutations alone a search that found a
  good local optimum early never leaves its basin (on NAS-Bench-201, 30 seeds, regret at 100 queries
  0.22 without them, 0.15 with 200);
- architectures equivalent to a known one (the space's `canonical_key`) are never candidates.

Asynchronous: the fit and its ranking of candidates are kept until a new result arrives, so asks in
between propose the next-ranked candidates not out yet. No architecture is proposed twice while any
other is left. `warm_start` (arch, score) pairs - e.g. val_acc from a related table, or a zero-cost
proxy mapped onto the objective's scale - join the predictor's training data without counting as
evaluations, the best of them are candidates and parents, and they shorten the random phase by as many.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Sequence

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.estimators.predictors import GPPredictor, MLPEnsemble, Predictor, normal_scores
from nasforge.objective import Objective
from nasforge.spaces.base import Arch, Encodable, Mutable, PathEncodable, SearchSpace
from nasforge.strategies.base import EvaluatesOnce, Strategy, require

ENCODINGS = ("path", "onehot")
PREDICTORS = ("ensemble", "gp")
ACQUISITIONS = ("ts", "ucb", "ei")
PARENTS = 10  # the best architectures mutated into candidates (the paper's 10)
UCB_BETA = 0.5  # UCB's weight on the standard deviation (the BANANAS code's explore factor)
REFIT_STEPS = 50  # Adam steps of a refit on one more result (a fresh fit takes MLPEnsemble's 200)
NORMAL = NormalDist()


class Bananas(EvaluatesOnce, Strategy):
    """Predictor-guided search over mutations of the best architectures; each is evaluated once.

    Options: `encoding` ("path" where the space is PathEncodable, else "onehot": `space.encode`),
    `predictor` ("ensemble" of `ensemble_size` MLPs, or "gp"), `acquisition` ("ts", "ucb", "ei"),
    `initial` random architectures, `candidates` mutations and `random_candidates` random architectures
    scored per fit, `warm_start` (arch, score) pairs.
    """

    # a cache of encodings, a pure function of the space: no learned state
    _config_attrs = (*Strategy._config_attrs, "_codes")

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                 encoding: str | None = None, predictor: str = "ensemble", acquisition: str = "ts",
                 initial: int = 10, candidates: int = 100, random_candidates: int = 200, ensemble_size: int = 5,
                 warm_start: Sequence[tuple[Arch, float]] | None = None) -> None:
        require(space, Mutable, "bananas")
        encoding = encoding if encoding is not None else "path" if isinstance(space, PathEncodable) else "onehot"
        for field, value, allowed in (("encoding", encoding, ENCODINGS), ("predictor", predictor, PREDICTORS),
                                      ("acquisition", acquisition, ACQUISITIONS)):
            if value not in allowed:
                raise NasforgeError(f"{field}: {value!r} is not allowed (allowed: {', '.join(allowed)})")
        if encoding == "path" and not isinstance(space, PathEncodable):
            raise NasforgeError(f"encoding: 'path' needs a PathEncodable space, '{space.name}' is not (allowed: onehot)")
        if encoding == "onehot" and not isinstance(space, Encodable):
            raise NasforgeError(f"encoding: 'onehot' needs an Encodable space, '{space.name}' is not (allowed: path)")
        for field, value, least in (("initial", initial, 0), ("candidates", candidates, 1),
                                    ("random_candidates", random_candidates, 0), ("ensemble_size", ensemble_size, 1)):
            if type(value) is not int or value < least:
                raise NasforgeError(f"{field}: expected an integer >= {least}, got {value!r}")
        super().__init__(space, objective=objective, seed=seed)
        self.encoding = encoding
        self.predictor = predictor
        self.acquisition = acquisition
        self.initial = initial
        self.candidates = candidates
        self.random_candidates = random_candidates
        self.ensemble_size = ensemble_size
        self.warm_start = _warm_start(space, warm_start)
        self.scores: dict[str, float | None] = {}  # canonical key -> score of every told result (None: failed)
        self.observed: list[tuple[Arch, float]] = []  # results with a score, in the order told
        self.out: set[str] = set()  # canonical keys asked, not told yet
        self.ranked: list[Arch] = []  # the last fit's candidates, best first, still to propose
        self.ranked_at = -1  # len(observed) when `ranked` was made
        self.model: MLPEnsemble | None = None  # the ensemble, refitted on from its earlier weights
        self._codes: dict[str, np.ndarray] = {}

    def ask(self) -> Arch:
        data = self._training_data()
        known = len(self.scores) + len(self.out)  # told (asked or not: a warm start's count too) or out
        if known >= self.initial - len(self.warm_start) and len(data) >= 2:
            if self.ranked_at != len(self.observed):
                self.ranked, self.ranked_at = self._rank(data), len(self.observed)
            while self.ranked:
                arch = self.ranked.pop(0)
                if not self._seen(arch):
                    return self._out(arch)
        return self._out(self._unseen())

    def tell(self, arch: Arch, result: Result) -> None:
        score = self._record(arch, result)
        if score is not None:
            self.observed.append((arch, score))

    def _training_data(self) -> list[tuple[Arch, float]]:
        """Every result with a score, and the warm-start pairs of architectures not evaluated."""
        return self.observed + [(arch, score) for arch, score in self.warm_start if self._key(arch) not in self.scores]

    def _rank(self, data: list[tuple[Arch, float]]) -> list[Arch]:
        """Fit the predictor to `data` and order fresh candidates by the acquisition function."""
        pool = self._candidates(data)
        if not pool:
            return []
        y = normal_scores(np.array([score for _, score in data]))
        mean, std = self._fit(self._encode([arch for arch, _ in data], keep=True), y).predict(self._encode(pool))
        value = _acquire(self.acquisition, mean, std, float(y.max()), self.rng)
        return [pool[int(i)] for i in np.argsort(-value, kind="stable")]

    def _fit(self, x: np.ndarray, y: np.ndarray) -> Predictor:
        """The predictor fitted to `x`, `y`: the ensemble on from its earlier weights, a GP afresh
        (its fit is exact, and a fitted GP holds its data: too big to keep in the state)."""
        if self.predictor == "gp":
            return GPPredictor(seed=int(self.rng.integers(2**31))).fit(x, y)
        if self.model is None:
            self.model = MLPEnsemble(members=self.ensemble_size, refit_steps=REFIT_STEPS, seed=int(self.rng.integers(2**31)))
        return self.model.fit(x, y)

    def _candidates(self, data: list[tuple[Arch, float]]) -> list[Arch]:
        """Distinct architectures neither told nor out, nor equivalent to one that is: the `PARENTS`
        best so far that are not evaluated (warm-start ones), mutations of all of them taken in turn
        up to `candidates`, and `random_candidates` random ones."""
        parents = [arch for arch, _ in sorted(data, key=lambda pair: -pair[1])[:PARENTS]]
        pool: dict[str, Arch] = {}
        for arch in parents:
            self._add_new(pool, arch)
        misses, draw = 0, 0
        # small neighbourhoods run out: stop once three rounds over the parents found nothing new
        while len(pool) < self.candidates and misses < 3 * len(parents):
            added = self._add_new(pool, self.space.mutate(parents[draw % len(parents)], self.rng))
            draw, misses = draw + 1, 0 if added else misses + 1
        for _ in range(self.random_candidates):
            self._add_new(pool, self.space.sample(self.rng))
        return list(pool.values())

    def _add_new(self, pool: dict[str, Arch], arch: Arch) -> bool:
        """Put `arch` in `pool` unless it, or an equivalent, is there, told or out; whether it was put."""
        key = self._key(arch)
        if key in pool or self._seen(arch):
            return False
        pool[key] = arch
        return True

    def _encode(self, archs: list[Arch], *, keep: bool = False) -> np.ndarray:
        """The encodings of `archs`; `keep` caches them (for the training data, encoded every fit)."""
        encode = self.space.path_encode if self.encoding == "path" else self.space.encode
        codes = []
        for arch in archs:
            code = self._codes.get(arch.key)
            if code is None:
                code = encode(arch)
                if keep:
                    self._codes[arch.key] = code
            codes.append(code)
        return np.stack(codes)


def _acquire(kind: str, mean: np.ndarray, std: np.ndarray, best: float, rng: np.random.Generator) -> np.ndarray:
    """The acquisition value of each candidate (higher is better)."""
    if kind == "ts":  # independent Thompson sampling: one draw from each candidate's Gaussian
        return mean + std * rng.standard_normal(len(mean))
    if kind == "ucb":
        return mean + UCB_BETA * std
    std = np.maximum(std, 1e-12)  # expected improvement over the best result so far
    z = (mean - best) / std
    return (mean - best) * np.array([NORMAL.cdf(v) for v in z]) + std * np.array([NORMAL.pdf(v) for v in z])


def _warm_start(space: SearchSpace, pairs: Sequence[tuple[Arch, float]] | None) -> list[tuple[Arch, float]]:
    """The warm-start pairs, checked: architectures of `space` with finite scores, the last pair of
    an architecture given twice winning."""
    checked: dict[str, tuple[Arch, float]] = {}
    for i, pair in enumerate(pairs or ()):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not isinstance(pair[0], Arch):
            raise NasforgeError(f"warm_start[{i}]: expected an (Arch, score) pair, got {pair!r}")
        arch, score = pair
        if arch.space != space.name:
            raise NasforgeError(f"warm_start[{i}]: the architecture belongs to space '{arch.space}', not '{space.name}'")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise NasforgeError(f"warm_start[{i}]: score must be a finite number, got {score!r}")
        checked[arch.key] = (arch, float(score))
    return list(checked.values())
