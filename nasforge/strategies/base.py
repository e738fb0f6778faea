"""The search strategy interface: `ask()` an architecture, `tell()` its result (Optuna's small sampler shape).

Strategies are asynchronous-safe: they may be asked again before earlier trials are told. Their whole
state (RNG included) is `state_dict()`, so a run resumes exactly where it stopped.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.objective import Objective
from nasforge.spaces.base import Arch, SearchSpace


class Strategy(ABC):
    """Proposes architectures of `space` and learns from their results under `objective`."""

    #: attributes that are configuration, not learned state (kept out of `state_dict`)
    _config_attrs: tuple[str, ...] = ("space", "objective")

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0) -> None:
        self.space = space
        self.objective = objective or Objective()
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def ask(self) -> Arch:
        """The next architecture to evaluate."""

    def ask_trial(self) -> tuple[Arch, float | None]:
        """The next architecture and the fidelity to evaluate it at (None: the run's own fidelity).

        Only multi-fidelity strategies choose fidelities; they override this, and their `tell` sees
        the fidelity again as `result.fidelity`. The runner calls this, never `ask` directly.
        """
        return self.ask(), None

    @abstractmethod
    def tell(self, arch: Arch, result: Result) -> None:
        """The result of an architecture this strategy proposed (failed results included)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything learned so far, RNG included, as a deep copy (picklable)."""
        return copy.deepcopy({k: v for k, v in vars(self).items() if k not in self._config_attrs})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unknown = set(state) - set(vars(self))
        if unknown:
            raise NasforgeError(f"strategy state: unknown fields {sorted(unknown)} for {type(self).__name__}")
        vars(self).update(copy.deepcopy(state))


class EvaluatesOnce:
    """Bookkeeping for strategies that propose each architecture once: `scores` (canonical key -> score
    of every told result) and `out` (canonical keys asked, not told yet) are the subclass's attributes.
    Keys are the space's `canonical_key`, so an architecture equivalent to a known one counts as known."""

    #: random draws to find an unseen architecture before declaring the space used up
    max_draws = 10_000

    def _key(self, arch: Arch) -> str:
        return self.space.canonical_key(arch)

    def _seen(self, arch: Arch) -> bool:
        """Whether `arch` or an equivalent has been told or is out."""
        key = self._key(arch)
        return key in self.scores or key in self.out

    def _out(self, arch: Arch) -> Arch:
        self.out.add(self._key(arch))
        return arch

    def _record(self, arch: Arch, result: Result) -> float | None:
        """Book a told result: its score (None when failed), and the arch no longer out."""
        score = self.objective.score(result)
        key = self._key(arch)
        self.scores[key] = score
        self.out.discard(key)
        return score

    def _unseen(self) -> Arch:
        """A random architecture neither told nor out, nor equivalent to one that is."""
        seen = len(self.scores) + len(self.out)
        if seen < self.space.size:
            for _ in range(self.max_draws):
                arch = self.space.sample(self.rng)
                if not self._seen(arch):
                    return arch
        raise NasforgeError(f"{type(self).__name__}: every architecture of space '{self.space.name}' has been "
                            f"evaluated or is out ({seen} seen); lower the budget")


def require(space: SearchSpace, capability: type, strategy: str) -> None:
    """Refuse a space that lacks the capability a strategy needs, naming both."""
    if not isinstance(space, capability):
        raise NasforgeError(f"strategy '{strategy}': space '{space.name}' is not {capability.__name__}")
