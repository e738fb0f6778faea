"""SPOS, single path one-shot (Guo et al., 2020, "Single Path One-Shot Neural Architecture Search with
Uniform Sampling").

Training: each step samples one path uniformly at random and trains only its ops, so every subnet's
weights are trained alike and no architecture is favoured while the supernet learns. `sampling="fair"` is
FairNAS' strict fairness (Chu et al., 2021, "FairNAS: Rethinking Evaluation Fairness of Weight Sharing
Neural Architecture Search"): each step trains as many paths as a decision has options, together using
every option of every decision once, and takes one update with their gradients accumulated, so every op
is trained on every step rather than on a fifth of them in expectation. Search: the
project's regularized evolution (`nasforge.strategies.evolution`) over subnets that inherit the trained
weights, each scored after BatchNorm recalibration (`SupernetEstimator`); hard limits on parameters,
FLOPs or latency go through `nasforge.strategies.constrained` like in any other search.
"""

from __future__ import annotations

from typing import Any

import torch

from nasforge.errors import NasforgeError
from nasforge.estimators.training import check_whole
from nasforge.objective import Objective
from nasforge.oneshot.trainer import OneShot
from nasforge.strategies.base import Strategy
from nasforge.strategies.evolution import RegularizedEvolution

__all__ = ["SAMPLING", "Spos"]

#: how training picks the paths of a step: name -> what
SAMPLING = {"uniform": "one path, every option of every decision equally likely (SPOS)",
            "fair": "FairNAS (Chu et al., 2021): paths using every option of every decision once, gradients accumulated"}


class Spos(OneShot):
    """Uniform single-path training, then aging evolution of `population_size` / `sample_size`; other
    options as `OneShot`."""

    name = "spos"

    def __init__(self, *, population_size: int = 20, sample_size: int = 5, sampling: str = "uniform",
                 **options: Any) -> None:
        super().__init__(**options)
        check_whole("population_size", population_size, 2)
        check_whole("sample_size", sample_size, 1)
        if sampling not in SAMPLING:
            raise NasforgeError(f"sampling: '{sampling}' is not allowed (allowed: {', '.join(SAMPLING)})")
        self.population_size, self.sample_size, self.sampling = population_size, sample_size, sampling
        self.proposals(Objective())  # refuses a bad pair now, not after the supernet has trained

    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.sampling == "uniform":
            logits = self.supernet(x, path=self.sample_path())
            loss = self.loss(logits, y)
            self.weight_step(loss)
            return loss.detach(), logits.detach()
        # FairNAS: the paths' gradients accumulated, one graph in memory at a time, then one update
        self.optimizer.zero_grad(set_to_none=True)
        losses, first = [], None
        for path in self.fair_paths():
            logits = self.supernet(x, path=path)
            loss = self.loss(logits, y)
            loss.backward()
            losses.append(loss.detach())
            first = logits.detach() if first is None else first
        self.weight_step()
        return torch.stack(losses).mean(), first

    def fair_paths(self) -> list[tuple[int, ...]]:
        """FairNAS' strictly fair sample: as many paths as a decision has options, together using every
        option of every decision exactly once (a decision with fewer options repeats its permutation)."""
        orders = [torch.randperm(n, generator=self.generator) for n in self.supernet.sizes]
        return [tuple(int(order[i % len(order)]) for order in orders) for i in range(max(self.supernet.sizes))]

    def proposals(self, objective: Objective) -> Strategy:
        return RegularizedEvolution(self.space, objective=objective, seed=self.seed,
                                    population_size=self.population_size, sample_size=self.sample_size)
