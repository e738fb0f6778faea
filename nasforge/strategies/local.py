"""Local search: hill climbing over a space's neighbourhood, restarting at local optima
(White, Nolen & Savani, 2020, "Local Search is State of the Art for Neural Architecture Search Benchmarks").

From a random start, the neighbours of the current architecture (`space.neighbors`) are evaluated in
a seeded random order. `improvement="first"` moves to the first neighbour that beats the current
point; `improvement="best"` evaluates the whole neighbourhood, then moves to its best member if that
beats the current point; first improvement, the default, spends fewer queries per step. A
neighbourhood with nothing better is a local optimum: the search restarts from a random
architecture it has not seen.

An architecture with a result is never proposed again, nor one that is out for evaluation, nor one
equivalent to either (the space's `canonical_key`); one told without being proposed (a warm start)
counts as known too.
Asynchronous: while neighbours are out, further asks take the next unvisited neighbours; once none is
left to ask, asks are random unseen architectures. While restarting, the first of these told with a
result becomes the new current point.
"""

from __future__ import annotations

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.objective import Objective
from nasforge.spaces.base import Arch, Mutable, SearchSpace
from nasforge.strategies.base import EvaluatesOnce, Strategy, require

IMPROVEMENTS = ("first", "best")


class LocalSearch(EvaluatesOnce, Strategy):
    """Hill climbing with random restarts over `space.neighbors`; each architecture is evaluated once."""

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                 improvement: str = "first") -> None:
        require(space, Mutable, "local")
        if improvement not in IMPROVEMENTS:
            raise NasforgeError(f"improvement: '{improvement}' is not allowed (allowed: {', '.join(IMPROVEMENTS)})")
        super().__init__(space, objective=objective, seed=seed)
        self.improvement = improvement
        self.scores: dict[str, float | None] = {}  # canonical key -> score of every told result (None: failed)
        self.out: set[str] = set()  # canonical keys asked, not told yet
        self.current: tuple[Arch, float] | None = None  # None: (re)starting
        self.queue: list[Arch] = []  # neighbours of the current point still to ask, in visiting order
        self.waiting: set[str] = set()  # canonical keys of the neighbours of the current point that are out
        self.best_neighbor: tuple[Arch, float] | None = None  # the best neighbour better than the current point

    def ask(self) -> Arch:
        while self.queue:
            arch = self.queue.pop(0)
            key = self._key(arch)
            if key in self.scores:  # known already (e.g. a restart candidate or an equivalent): judged without a query
                self._judge(arch, self.scores[key])
            elif key in self.out:  # out already: judged when told
                self.waiting.add(key)
            else:
                self.waiting.add(key)
                return self._out(arch)
        return self._out(self._unseen())

    def tell(self, arch: Arch, result: Result) -> None:
        score = self._record(arch, result)
        if self.current is None:
            if score is not None:  # the first start candidate told with a result becomes the current point
                self._move(arch, score)
        elif (key := self._key(arch)) in self.waiting:  # else a neighbour of an earlier point, or a restart candidate
            self.waiting.discard(key)
            self._judge(arch, score)


    def _move(self, arch: Arch, score: float) -> None:
        """Make `arch` the current point and queue its neighbours in a random order."""
        neighbors = self.space.neighbors(arch)
        self.current, self.best_neighbor, self.waiting = (arch, score), None, set()
        self.queue = [neighbors[int(i)] for i in self.rng.permutation(len(neighbors))]

    def _judge(self, arch: Arch, score: float | None) -> None:
        """A neighbour of the current point has a result: move to it, finish the neighbourhood, or go on."""
        better = score is not None and score > self.current[1]
        if better and (self.best_neighbor is None or score > self.best_neighbor[1]):
            self.best_neighbor = (arch, score)
        if better and self.improvement == "first":
            self._move(arch, score)
        elif not self.queue and not self.waiting:  # every neighbour judged
            if self.best_neighbor is not None:  # improvement="best": climb to the best of them
                self._move(*self.best_neighbor)
            else:  # a local optimum: restart from a random architecture
                self.current, self.queue = None, []
