"""Search strategies: how to explore. `create_strategy(name, space, ...)` for the CLI and configs."""

from __future__ import annotations

from functools import partial
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
STRATEGIES.register("local", "nasforge.strategies.local:LocalSearch")
STRATEGIES.register("reinforce", "nasforge.strategies.reinforce:Reinforce")
STRATEGIES.register("ppo", "nasforge.strategies.ppo:PPO")
STRATEGIES.register("bananas", "nasforge.strategies.bananas:Bananas")
STRATEGIES.register("successive_halving", "nasforge.strategies.hyperband:SuccessiveHalving")
STRATEGIES.register("hyperband", "nasforge.strategies.hyperband:Hyperband")
STRATEGIES.register("bohb", "nasforge.strategies.hyperband:BOHB")
STRATEGIES.register("nsga2", "nasforge.strategies.nsga2:NSGA2")
STRATEGIES.register("mo-evolution", "nasforge.strategies.mo_evolution:MultiObjectiveEvolution")

OPTUNA_SAMPLERS = ("tpe", "cmaes", "gp", "nsga2", "random")


def _optuna(space: SearchSpace, *, objective: Objective | None = None, seed: int = 0, sampler: str) -> Strategy:
    """`optuna:SAMPLER`, importing Optuna only when one is asked for."""
    from nasforge.strategies.optuna_sampler import OptunaStrategy

    return OptunaStrategy(space, objective=objective, seed=seed, sampler=sampler)


for _sampler in OPTUNA_SAMPLERS:
    STRATEGIES.register(f"optuna:{_sampler}", partial(_optuna, sampler=_sampler))


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def create_strategy(name: str, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                    **options: Any) -> Strategy:
    """The strategy `name` over `space`, seeded, with its keyword options (e.g. `population_size=20`)."""
    return STRATEGIES.create(name, space=space, objective=objective, seed=seed, **options)
