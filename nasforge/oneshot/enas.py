"""ENAS (Pham et al., 2018, "Efficient Neural Architecture Search via Parameter Sharing").

The LSTM controller of `nasforge.strategies.controller`, trained by the project's REINFORCE strategy
(`nasforge.strategies.reinforce`), samples subgraphs of the supernet. Each step trains the shared weights
on one sampled path (training batch), then samples another path and tells the controller its accuracy on
a validation batch with the shared weights, the reward; the controller takes a policy-gradient step every
`controller_batch` rewards. When training ends, the controller samples `derive_samples` architectures;
each is scored with inherited, recalibrated weights and the best is the result (the paper's derivation).
"""

from __future__ import annotations

from typing import Any

import torch

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.oneshot.trainer import OneShot
from nasforge.spaces.base import Arch
from nasforge.strategies.reinforce import Reinforce

__all__ = ["Enas"]


class Enas(OneShot):
    """ENAS with options `controller_lr`, `controller_batch`, `entropy_weight` (REINFORCE's) and
    `derive_samples`; other options as `OneShot`."""

    name = "enas"

    def __init__(self, *, controller_lr: float = 0.02, controller_batch: int = 10, entropy_weight: float = 0.03,
                 derive_samples: int = 10, **options: Any) -> None:
        super().__init__(**options)
        if isinstance(derive_samples, bool) or not isinstance(derive_samples, int) or derive_samples < 1:
            raise NasforgeError(f"derive_samples: must be a whole number >= 1, got {derive_samples!r}")
        self.controller_options = dict(learning_rate=controller_lr, batch_size=controller_batch,
                                       entropy_weight=entropy_weight)
        self.derive_samples = derive_samples
        self.controller = Reinforce(self.space, seed=self.seed, **self.controller_options)  # validates its options
        self._rewards: list[float] = []

    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trained = self.controller.ask()
        del self.controller.asked[trained.key]  # a path drawn for training only: it earns no reward
        logits = self.supernet(x, path=self.space.decisions(trained))
        loss = self.loss(logits, y)
        self.weight_step(loss)
        arch = self.controller.ask()
        with torch.no_grad():  # the reward: the sampled subgraph's accuracy on a validation batch, shared weights
            accuracy = (self.supernet(x_val, path=self.space.decisions(arch)).argmax(1) == y_val).float().mean()
        self.mean_over_ranks(accuracy)  # data-parallel: every rank's controller is told the whole batch's reward
        reward = 100.0 * accuracy.item()
        self.controller.tell(arch, Result(metrics={"val_acc": reward}))
        self._rewards.append(reward)
        return loss.detach(), logits.detach()

    def _begin_epoch(self, epoch: int) -> None:
        self._rewards = []

    def monitor(self) -> dict[str, Any]:
        return {"mean_reward": sum(self._rewards) / max(1, len(self._rewards))}

    def candidates(self) -> list[Arch]:
        archs = [self.controller.ask() for _ in range(self.derive_samples)]
        self.controller.asked.clear()
        return archs

    def _method_state(self) -> dict[str, Any]:
        return {"controller": self.controller.state_dict(), "rewards": list(self._rewards)}

    def _load_method_state(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self._rewards = list(state["rewards"])
