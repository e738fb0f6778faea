"""REINFORCE over an LSTM controller (Williams, 1992; as used by Zoph & Le, 2017 and ENAS, Pham et al., 2018).

Every `batch_size` told results, one Adam step on
    loss = -mean(A * log p(a)) - entropy_weight * mean(H(p)),   A = (R - b) / rms(R - b),
with b an exponential moving average of past rewards (a baseline that cuts the variance without
biasing the gradient) and the entropy bonus keeping the policy from collapsing early. The log-probs
are those of the current controller: with results told asynchronously the sample may come from a
slightly older policy, a small bias REINFORCE accepts (PPO corrects it with its ratio).
"""

from __future__ import annotations

import torch

from nasforge.strategies.controller import PolicyGradientStrategy


class Reinforce(PolicyGradientStrategy):
    """Policy gradient with a moving-average baseline and an entropy bonus; options as `PolicyGradientStrategy`."""

    def update(self, decisions: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor) -> None:
        log_prob, entropy = self.controller(decisions)
        self.step(-(advantages * log_prob).mean() - self.entropy_weight * entropy.mean())
