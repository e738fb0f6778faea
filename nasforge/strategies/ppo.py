"""Proximal Policy Optimization over an LSTM controller (Schulman et al., 2017, "Proximal Policy
Optimization Algorithms"; applied to NAS by Zoph et al., 2018, NASNet).

Each batch of `batch_size` sampled architectures is reused for `epochs` passes of minibatch Adam
steps on the clipped surrogate plus an entropy bonus,
    L = E[min(r A, clip(r, 1 - clip, 1 + clip) A)] + entropy_weight * E[H],   r = p_new(a) / p_ask(a),
maximised, with A = R - b (b the moving-average baseline) normalised to unit root-mean-square over
the batch (see `PolicyGradientStrategy`). The ratio is taken against the log-probability recorded
when the architecture was asked, which also corrects for results told asynchronously by an older policy.
"""

from __future__ import annotations

import torch

from nasforge.errors import NasforgeError
from nasforge.objective import Objective
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.controller import PolicyGradientStrategy


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """min(r A, clip(r, 1 - clip, 1 + clip) A) per sample (eq. 7 of the paper): no gain from moving r past the clip."""
    return torch.minimum(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)


class PPO(PolicyGradientStrategy):
    """Clipped-surrogate policy optimisation; `epochs` passes of `minibatch_size` steps per batch."""

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                 hidden_size: int = 64, learning_rate: float = 0.01, batch_size: int = 10, entropy_weight: float = 0.03,
                 baseline_decay: float = 0.9, epochs: int = 4, minibatch_size: int = 5, clip: float = 0.2) -> None:
        if epochs < 1:
            raise NasforgeError(f"epochs: must be >= 1, got {epochs}")
        if minibatch_size < 1:
            raise NasforgeError(f"minibatch_size: must be >= 1, got {minibatch_size}")
        if not 0 < clip < 1:
            raise NasforgeError(f"clip: must be in (0, 1), got {clip}")
        super().__init__(space, objective=objective, seed=seed, hidden_size=hidden_size, learning_rate=learning_rate,
                         batch_size=batch_size, entropy_weight=entropy_weight, baseline_decay=baseline_decay)
        self.epochs, self.minibatch_size, self.clip = epochs, minibatch_size, clip

    def update(self, decisions: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor) -> None:
        n = len(decisions)
        for _ in range(self.epochs):
            order = self.rng.permutation(n)
            for start in range(0, n, self.minibatch_size):
                idx = torch.as_tensor(order[start:start + self.minibatch_size])
                log_prob, entropy = self.controller(decisions[idx])
                surrogate = clipped_surrogate(torch.exp(log_prob - old_log_probs[idx]), advantages[idx], self.clip)
                self.step(-surrogate.mean() - self.entropy_weight * entropy.mean())
