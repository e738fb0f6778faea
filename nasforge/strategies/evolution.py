"""Regularized (aging) evolution (Real et al., 2019, "Regularized Evolution for Image Classifier Architecture Search").

The first `population_size` asks are random; after that each ask draws `sample_size` members of the
population at random, mutates the best of them, and each tell adds the child and retires the OLDEST
member — age, not fitness, decides who dies, which keeps the search from clinging to lucky evaluations.
"""

from __future__ import annotations

from collections import deque

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.objective import Objective
from nasforge.spaces.base import Arch, Mutable, SearchSpace
from nasforge.strategies.base import Strategy, require


class RegularizedEvolution(Strategy):
    """Aging evolution with tournament selection; asynchronous: parents come from results told so far."""

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                 population_size: int = 20, sample_size: int = 5) -> None:
        require(space, Mutable, "evolution")
        if population_size < 2:
            raise NasforgeError(f"population_size: must be >= 2, got {population_size}")
        if not 1 <= sample_size <= population_size:
            raise NasforgeError(f"sample_size: must be between 1 and population_size ({population_size}), got {sample_size}")
        super().__init__(space, objective=objective, seed=seed)
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[tuple[Arch, float]] = deque()
        self.asked = 0

    def ask(self) -> Arch:
        self.asked += 1
        if self.asked <= self.population_size or not self.population:
            return self.space.sample(self.rng)
        picks = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)), replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]
        return self.space.mutate(parent, self.rng)

    def tell(self, arch: Arch, result: Result) -> None:
        score = self.objective.score(result)
        if score is None:  # a failed child never becomes a parent
            return
        self.population.append((arch, score))
        if len(self.population) > self.population_size:
            self.population.popleft()
