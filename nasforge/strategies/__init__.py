"""Search strategies: how to explore. `create_strategy(name, space, ...)` for the CLI and configs."""

from __future__ import annotations

from typing import Any

from nasforge.objective import Objective
from nasforge.registry import Registry
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.strategies.evolution import RegularizedEvolution
from nasforge.strategies.random import RandomSearch

__all__ = ["RandomSearch", "RegularizedEvolution", "Strategy", "create_strategy", "list_strategies"]

STRATEGIES: Registry[Strategy] = Registry("strategy")
STRATEGIES.register("random", RandomSearch)
STRATEGIES.register("evolution", RegularizedEvolution)


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def create_strategy(name: str, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                    **options: Any) -> Strategy:
    """The strategy `name` over `space`, seeded, with its keyword options (e.g. `population_size=20`)."""
    return STRATEGIES.create(name, space=space, objective=objective, seed=seed, **options)
