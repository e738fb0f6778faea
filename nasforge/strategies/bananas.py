"""BANANAS: Bayesian optimisation with a neural-ensemble predictor (White, Neiswanger & Savani, 2021,
"BANANAS: Bayesian Optimization with Neural Architectures for Neural Architecture Search").

After `initial` random architectures, each ask fits a predictor to every result so far (an ensemble
of MLPs on the path encoding by default, a Gaussian process as the alternative), draws `candidates`
new architectures by mutating the best ones found (the paper's acquisition optimisation), and
proposes the candidate the acquisition function rates highest: independent Thompson sampling (a
draw from each candidate's predicted Gaussian, the paper's choice), upper confidence bound or
expected improvement.

Asynchronous: the fit and the ranking of candidates are kept until a new result arrives, so asks in
between propose the next-ranked candidates not out yet. No architecture is proposed twice while any
other is left. `warm_start` pairs (e.g. from a table or a zero-cost proxy, on the objective's scale)
join the predictor's training data without counting as evaluations, and shorten the random phase by
as many architectures.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.estimators.predictors import GPPredictor, MLPEnsemble, Predictor
from nasforge.objective import Objective
from nasforge.spaces.base import Arch, Encodable, Mutable, PathEncodable, SearchSpace
from nasforge.strategies.base import EvaluatesOnce, Strategy, require

ENCODINGS = ("path", "onehot")
PREDICTORS = ("ensemble", "gp")
ACQUISITIONS = ("ts", "ucb", "ei")
PARENTS = 10  # the best architectures mutated into candidates (the paper's 10)
UCB_BETA = 0.5  # UCB's weight on the standard deviation (the BANANAS code's explore factor)
STEPS, REFIT_STEPS = 200, 50  # Adam steps of a first fit, and of a refit from the previous weights


class Bananas(EvaluatesOnce, Strategy):
    """Predictor-guided search over mutations of the best architectures; each is evaluated once.

    Options: `encoding` ("path" where the space is PathEncodable, else "onehot": `space.encode`),
    `predictor` ("ensemble" of `ensemble_size` MLPs, or "gp"), `acquisition` ("ts", "ucb", "ei"),
    `initial` random architectures, `candidates` scored per fit, `warm_start` (arch, score) pairs.
    """

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                 encoding: str | None = None, predictor: str = "ensemble", acquisition: str = "ts",
                 initial: int = 10, candidates: int = 100, ensemble_size: int = 5,
                 warm_start: Sequence[tuple[Arch, float]] | None = None) -> None:
        require(space, Mutable, "bananas")
        encoding = encoding if encoding is not None else "path" if isinstance(space, PathEncodable) else "onehot"
        for field, value, allowed in (("encoding", encoding, ENCODINGS), ("predictor", predictor, PREDICTORS),
                                      ("acquisition", acquisition, ACQUISITIONS)):
            if value not in allowed:
                raise NasforgeError(f"{field}: {value!r} is not allowed (allowed: {', '.join(allowed)})")
        if encoding == "path" and not isinstance(space, PathEncodable):
            raise NasforgeError(f"encoding: 'path' needs a PathEncodable space, '{space.name}' is not (allowed: onehot)")
        require(space, Encodable, "bananas") if encoding == "onehot" else None
        for field, value, least in (("initial", initial, 0), ("candidates", candidates, 1), ("ensemble_size", ensemble_size, 1)):
            if type(value) is not int or value < least:
                raise NasforgeError(f"{field}: expected an integer >= {least}, got {value!r}")
        super().__init__(space, objective=objective, seed=seed)
        self.encoding = encoding
        self.predictor = predictor
        self.acquisition = acquisition
        self.initial = initial
        self.candidates = candidates
        self.ensemble_size = ensemble_size
        self.warm_start = _warm_start(space, warm_start)
        self.scores: dict[str, float | None] = {}  # arch key -> score of every told result (None: failed)
        self.observed: list[tuple[Arch, float]] = []  # results with a score, in the order told
        self.out: set[str] = set()  # asked, not told yet
        self.asked = 0
        self.ranked: list[Arch] = []  # the last fit's candidates, best first, still to propose
        self.ranked_at = -1  # len(observed) when `ranked` was made
        self.model: Predictor | None = None  # refitted on every new result, on from its earlier weights

    def ask(self) -> Arch:
        self.asked += 1
        data = self._training_data()
        if self.asked > self.initial - len(self.warm_start) and len(data) >= 2 and self._parents():
            if self.ranked_at != len(self.observed):
                self.ranked, self.ranked_at = self._rank(data), len(self.observed)
            while self.ranked:
                arch = self.ranked.pop(0)
                if arch.key not in self.scores and arch.key not in self.out:
                    return self._out(arch)
        return self._out(self._unseen())

    def tell(self, arch: Arch, result: Result) -> None:
        score = self.objective.score(result)
        self.scores[arch.key] = score
        self.out.discard(arch.key)
        if score is not None:
            self.observed.append((arch, score))

    def _parents(self) -> list[Arch]:
        return [arch for arch, _ in sorted(self.observed + self.warm_start, key=lambda pair: -pair[1])[:PARENTS]]

    def _training_data(self) -> list[tuple[Arch, float]]:
        """Every result with a score, and the warm-start pairs of architectures not evaluated."""
        return self.observed + [(arch, score) for arch, score in self.warm_start if arch.key not in self.scores]

    def _rank(self, data: list[tuple[Arch, float]]) -> list[Arch]:
        """Fit the predictor to `data` and order fresh candidates by the acquisition function."""
        pool = self._candidates(data)
        if not pool:
            return []
        if self.model is None:
            self.model = self._predictor(int(self.rng.integers(2**31)))
        y = np.array([s for _, s in data])
        self.model.fit(self._encode([a for a, _ in data]), y)
        mean, std = self.model.predict(self._encode(pool))
        value = _acquire(self.acquisition, mean, std, float(y.max()), self.rng)
        return [pool[int(i)] for i in np.argsort(-value, kind="stable")]

    def _candidates(self, data: list[tuple[Arch, float]]) -> list[Arch]:
        """Up to `candidates` distinct architectures neither told nor out: mutations of the best ones
        (round robin over the top `PARENTS`), plus unevaluated warm-start architectures."""
        seen = set(self.scores) | self.out
        parents = self._parents()
        pool: dict[str, Arch] = {arch.key: arch for arch, _ in self.warm_start if arch.key not in seen}
        for draw in range(3 * self.candidates):  # a bounded number of tries: neighbourhoods run out
            if len(pool) >= self.candidates:
                break
            child = self.space.mutate(parents[draw % len(parents)], self.rng)
            if child.key not in seen:
                pool.setdefault(child.key, child)
        return list(pool.values())

    def _predictor(self, seed: int) -> Predictor:
        if self.predictor == "gp":
            return GPPredictor(seed=seed)
        return MLPEnsemble(members=self.ensemble_size, seed=seed, steps=STEPS, refit_steps=REFIT_STEPS)

    def _encode(self, archs: list[Arch]) -> np.ndarray:
        encode = self.space.path_encode if self.encoding == "path" else self.space.encode
        return np.stack([encode(arch) for arch in archs])


def _acquire(kind: str, mean: np.ndarray, std: np.ndarray, best: float, rng: np.random.Generator) -> np.ndarray:
    """The acquisition value of each candidate (higher is better)."""
    if kind == "ts":  # independent Thompson sampling: one draw from each candidate's Gaussian
        return mean + std * rng.standard_normal(len(mean))
    if kind == "ucb":
        return mean + UCB_BETA * std
    z = (mean - best) / np.maximum(std, 1e-12)  # expected improvement over the best score so far
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    return (mean - best) * cdf + std * np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)


def _warm_start(space: SearchSpace, pairs: Sequence[tuple[Arch, float]] | None) -> list[tuple[Arch, float]]:
    """The warm-start pairs, checked: architectures of `space` with finite scores, each once."""
    checked: dict[str, tuple[Arch, float]] = {}
    for i, pair in enumerate(pairs or ()):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not isinstance(pair[0], Arch):
            raise NasforgeError(f"warm_start[{i}]: expected an (Arch, score) pair, got {pair!r}")
        arch, score = pair
        space.check(arch)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise NasforgeError(f"warm_start[{i}]: score must be a finite number, got {score!r}")
        checked[arch.key] = (arch, float(score))
    return list(checked.values())
