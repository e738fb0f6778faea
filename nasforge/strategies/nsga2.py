"""NSGA-II (Deb et al., 2002, "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II"), steady-state
and asynchronous, on the space's own sample / mutate and, for `ChoiceSpace`s, uniform crossover of decisions.

The population is the `population_size` best results told so far by non-dominated rank, then crowding
distance (elitist (mu + 1) replacement: Durillo et al., 2009, on steady-state NSGA-II, which suits
asynchronous trials). The first `population_size` asks are random; after that each ask picks two
parents by binary tournament (lower rank wins, then larger crowding distance), crosses them with
probability `crossover_prob` and mutates the child. An architecture is proposed once: a child already
told or out is mutated again, and after `MUTATION_TRIES` tries a random unseen architecture is asked instead.
Scalar objectives work too (one objective: a genetic algorithm). Optuna's `NSGAIISampler` is the peer
(`optuna:nsga2`); this one knows the space's mutation moves and never spends a query twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.hardware.objectives import crowding_distance, non_dominated_sort
from nasforge.objective import Objective
from nasforge.spaces.base import Arch, Mutable, SearchSpace
from nasforge.spaces.choices import ChoiceSpace
from nasforge.strategies.base import EvaluatesOnce, Strategy, require

__all__ = ["NSGA2", "MultiObjectiveStrategy", "rank_and_crowding"]

Member = tuple[Arch, tuple[float, ...]]

#: mutations of a child already seen before a random unseen architecture is asked instead
MUTATION_TRIES = 100


def rank_and_crowding(values: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Each point's non-dominated front number (0 = Pareto front) and crowding distance within its front."""
    rank, crowd = np.zeros(len(values), dtype=int), np.zeros(len(values))
    points = np.asarray(values, dtype=float)
    for number, front in enumerate(non_dominated_sort(points)):
        rank[front] = number
        crowd[front] = crowding_distance(points[front])
    return rank, crowd


class MultiObjectiveStrategy(EvaluatesOnce, Strategy):
    """What the multi-objective strategies share: the objective's value vectors, children proposed once.

    Architectures are told apart by their own key, not the space's `canonical_key`: functionally equal
    cells may differ in cost (a dead convolution still runs), which is what a Pareto search trades."""

    def __init__(self, space: SearchSpace, *, objective: Objective | None, seed: int, name: str,
                 crossover_prob: float) -> None:
        require(space, Mutable, name)
        if not 0.0 <= crossover_prob <= 1.0:
            raise NasforgeError(f"crossover_prob: must be in [0, 1], got {crossover_prob!r}")
        super().__init__(space, objective=objective, seed=seed)
        self.crossover_prob = crossover_prob if isinstance(space, ChoiceSpace) else 0.0
        self.scores: dict[str, float | None] = {}  # key -> score of every told result (None: failed)
        self.out: set[str] = set()  # keys asked, not told yet

    def _key(self, arch: Arch) -> str:
        return self.space.check(arch).key

    def _told(self, arch: Arch, result: Result) -> tuple[float, ...] | None:
        """Book `result`; its value vector, None when it failed or lacks a metric (then it is no parent)."""
        self._record(arch, result)
        return self.objective.values(result)

    def _child(self, first: Arch, second: Arch) -> Arch:
        """An unseen child of two parents: crossed (sometimes), then mutated until it is new."""
        child = first
        if first != second and self.rng.random() < self.crossover_prob:
            a, b = self.space.decisions(first), self.space.decisions(second)
            take = self.rng.random(len(a)) < 0.5
            child = self.space.decode([y if t else x for x, y, t in zip(a, b, take)])
        for _ in range(MUTATION_TRIES if self._seen(child) else 0):
            child = self.space.mutate(child, self.rng)
            if not self._seen(child):
                break
        return self._out(child if not self._seen(child) else self._unseen())


class NSGA2(MultiObjectiveStrategy):
    """Steady-state NSGA-II over the objective's value vectors (`Objective.values`)."""

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                 population_size: int = 20, crossover_prob: float = 0.9) -> None:
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 2:
            raise NasforgeError(f"population_size: must be a whole number >= 2, got {population_size!r}")
        super().__init__(space, objective=objective, seed=seed, name="nsga2", crossover_prob=crossover_prob)
        self.population_size = population_size
        self.population: list[Member] = []
        self.asked = 0

    def ask(self) -> Arch:
        self.asked += 1
        if self.asked <= self.population_size or len(self.population) < 2:
            return self._out(self._unseen())
        rank, crowd = rank_and_crowding([v for _, v in self.population])
        first, second = (self.population[self._tournament(rank, crowd)][0] for _ in range(2))
        return self._child(first, second)

    def tell(self, arch: Arch, result: Result) -> None:
        values = self._told(arch, result)
        if values is None:
            return
        self.population.append((arch, values))
        if len(self.population) > self.population_size:  # drop the worst: last front, most crowded
            rank, crowd = rank_and_crowding([v for _, v in self.population])
            worst = max(range(len(self.population)), key=lambda i: (rank[i], -crowd[i], -i))
            del self.population[worst]

    def _tournament(self, rank: np.ndarray, crowd: np.ndarray) -> int:
        i, j = (int(k) for k in self.rng.choice(len(rank), size=2, replace=False))
        return i if (rank[i], -crowd[i]) <= (rank[j], -crowd[j]) else j
