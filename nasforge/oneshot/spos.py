"""SPOS, single path one-shot (Guo et al., 2020, "Single Path One-Shot Neural Architecture Search with
Uniform Sampling").

Training: each step samples one path uniformly at random and trains only its ops, so every subnet's
weights are trained alike and no architecture is favoured while the supernet learns. Search: the
project's regularized evolution (`nasforge.strategies.evolution`) over subnets that inherit the trained
weights, each scored after BatchNorm recalibration (`SupernetEstimator`); hard limits on parameters,
FLOPs or latency go through `nasforge.strategies.constrained` like in any other search.
"""

from __future__ import annotations

from typing import Any

import torch

from nasforge.estimators.training import check_whole
from nasforge.objective import Objective
from nasforge.oneshot.trainer import OneShot
from nasforge.strategies.base import Strategy
from nasforge.strategies.evolution import RegularizedEvolution

__all__ = ["Spos"]


class Spos(OneShot):
    """Uniform single-path training, then aging evolution of `population_size` / `sample_size`; other
    options as `OneShot`."""

    name = "spos"

    def __init__(self, *, population_size: int = 20, sample_size: int = 5, **options: Any) -> None:
        super().__init__(**options)
        check_whole("population_size", population_size, 2)
        check_whole("sample_size", sample_size, 1)
        self.population_size, self.sample_size = population_size, sample_size
        self.proposals(Objective())  # refuses a bad pair now, not after the supernet has trained

    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.supernet(x, path=self.sample_path())
        loss = self.loss(logits, y)
        self.weight_step(loss)
        return loss.detach(), logits.detach()

    def proposals(self, objective: Objective) -> Strategy:
        return RegularizedEvolution(self.space, objective=objective, seed=self.seed,
                                    population_size=self.population_size, sample_size=self.sample_size)
