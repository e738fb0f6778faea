"""Warm start: evaluate a pre-ranked pool of architectures first (e.g. the top-k of many random ones by
a zero-cost combined score), then let a strategy go on from their results.

The pool's results are told to the inner strategy as results it did not ask for, which every strategy
learns from (BANANAS and local search as data, evolution as population members, the RL controllers
as samples, Optuna as finished trials); BANANAS counts them towards its random start.
"""

from __future__ import annotations

from typing import Any, Sequence

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.spaces.base import Arch
from nasforge.strategies.base import Strategy

__all__ = ["WarmStart", "rank_pool"]


class WarmStart(Strategy):
    """Asks the architectures of `pool` in order, then whatever `strategy` asks; tells `strategy` all."""

    def __init__(self, strategy: Strategy, pool: Sequence[Arch]) -> None:
        if not isinstance(strategy, Strategy):
            raise NasforgeError(f"strategy: expected a Strategy, got {type(strategy).__name__}")
        pool = list(pool)
        for i, arch in enumerate(pool):
            if not isinstance(arch, Arch) or arch.space != strategy.space.name:
                raise NasforgeError(f"pool[{i}]: expected an architecture of space '{strategy.space.name}', got {arch!r}")
        # no super().__init__: the wrapper draws nothing at random, so it has no RNG of its own
        self.space, self.objective = strategy.space, strategy.objective
        self.strategy, self.pool, self.asked = strategy, pool, 0

    def ask(self) -> Arch:
        return self.ask_trial()[0]

    def ask_trial(self) -> tuple[Arch, float | None]:
        if self.asked < len(self.pool):
            self.asked += 1
            return self.pool[self.asked - 1], None
        return self.strategy.ask_trial()

    def tell(self, arch: Arch, result: Result) -> None:
        self.strategy.tell(arch, result)

    def state_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy.state_dict(), "asked": self.asked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != {"strategy", "asked"}:
            raise NasforgeError(f"strategy state: expected fields ['asked', 'strategy'] for WarmStart, got {sorted(state)}")
        self.strategy.load_state_dict(state["strategy"])
        self.asked = state["asked"]


def rank_pool(archs: Sequence[Arch], scores: Sequence[float], top: int) -> list[Arch]:
    """The `top` architectures of `archs` by `scores` (higher first; ties keep the given order)."""
    if len(scores) != len(archs):
        raise NasforgeError(f"scores: expected one per architecture ({len(archs)}), got {len(scores)}")
    if type(top) is not int or top < 1:
        raise NasforgeError(f"top: expected a whole number >= 1, got {top!r}")
    order = sorted(range(len(archs)), key=lambda i: -scores[i])
    return [archs[i] for i in order[:top]]
