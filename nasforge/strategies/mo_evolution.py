"""Multi-objective regularized evolution: aging evolution (Real et al., 2019) whose tournaments compare value
vectors by Pareto dominance, with an archive of the Pareto front of everything told.

The first `population_size` asks are random. After that, with probability `archive_prob` the parent is a
random member of the archive (the non-dominated results so far: this spreads the search along the whole
front); otherwise `sample_size` members of the aging population are drawn and the parent is a random
one among the non-dominated of the sample. The child is the mutated parent (crossed with a second
such parent first, with probability `crossover_prob`, for `ChoiceSpace`s). Each tell adds the child and
retires the oldest member, as in single-objective regularized evolution. Architectures are proposed once.
"""

from __future__ import annotations

from collections import deque

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.hardware.objectives import pareto_front
from nasforge.objective import Objective
from nasforge.spaces.base import Arch, SearchSpace
from nasforge.strategies.nsga2 import Member, MultiObjectiveStrategy

__all__ = ["MultiObjectiveEvolution"]


class MultiObjectiveEvolution(MultiObjectiveStrategy):
    """Aging evolution with Pareto tournaments and a Pareto archive (`front`)."""

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                 population_size: int = 20, sample_size: int = 5, archive_prob: float = 0.5,
                 crossover_prob: float = 0.5) -> None:
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 2:
            raise NasforgeError(f"population_size: must be a whole number >= 2, got {population_size!r}")
        if not 1 <= sample_size <= population_size:
            raise NasforgeError(f"sample_size: must be between 1 and population_size ({population_size}), got {sample_size}")
        if not 0.0 <= archive_prob <= 1.0:
            raise NasforgeError(f"archive_prob: must be in [0, 1], got {archive_prob!r}")
        super().__init__(space, objective=objective, seed=seed, name="mo-evolution", crossover_prob=crossover_prob)
        self.population_size, self.sample_size, self.archive_prob = population_size, sample_size, archive_prob
        self.population: deque[Member] = deque()
        self.front: list[Member] = []  # the non-dominated results told so far, in the order told
        self.asked = 0

    def ask(self) -> Arch:
        self.asked += 1
        if self.asked <= self.population_size or not self.population:
            return self._out(self._unseen())
        return self._child(self._parent(), self._parent())

    def tell(self, arch: Arch, result: Result) -> None:
        values = self._told(arch, result)
        if values is None:  # a failed child never becomes a parent
            return
        self.population.append((arch, values))
        if len(self.population) > self.population_size:
            self.population.popleft()
        candidates = [*self.front, (arch, values)]
        self.front = [candidates[i] for i in pareto_front([v for _, v in candidates])]

    def _parent(self) -> Arch:
        if self.front and self.rng.random() < self.archive_prob:
            return self.front[int(self.rng.integers(len(self.front)))][0]
        picks = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)), replace=False)
        sample = [self.population[int(i)] for i in picks]
        best = pareto_front([v for _, v in sample])
        return sample[best[int(self.rng.integers(len(best)))]][0]
