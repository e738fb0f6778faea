"""nasforge: neural architecture search — spaces, strategies, estimators, hardware-aware objectives.

>>> import nasforge
>>> outcome = nasforge.search(out="runs/demo", space="nb201", estimator="tabular",
...                           table="nb201_cifar10.csv", strategy="evolution", budget=150)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator, Result
from nasforge.objective import Objective
from nasforge.runner.config import RunConfig
from nasforge.runner.search import SearchOutcome, run_search
from nasforge.spaces import Arch, SearchSpace, create_space, define_space, list_spaces
from nasforge.strategies import Strategy, create_strategy, list_strategies

__version__ = "0.1.0"

__all__ = [
    "Arch", "Estimator", "NasforgeError", "Objective", "Result", "RunConfig", "SearchOutcome", "SearchSpace",
    "Strategy", "__version__", "create_space", "create_strategy", "define_space", "list_spaces", "list_strategies",
    "search",
]


def search(*, out: str, resume: bool = False, **fields: Any) -> SearchOutcome:
    """Run a search and write its run directory; `fields` are `RunConfig`'s (space, strategy, budget, ...).

    E.g. `constraints={"max_params": 500_000}` rejects larger candidates before they are evaluated.
    """
    return run_search(RunConfig(out=str(out), **fields), resume=resume)
