"""GDAS (Dong & Yang, 2019, "Searching for A Robust Neural Architecture in Four GPU Hours").

DARTS' bilevel loop, but each forward samples ONE op per edge: Gumbel-max on log softmax(alpha) at
temperature tau, and only the sampled ops run. The straight-through estimator, h = onehot - p.detach() + p
with p = softmax((log softmax(alpha) + g) / tau), makes the forward exactly the sampled path while alpha
receives the gradient of the relaxed sample. tau decays linearly from `tau_max` (10) to `tau_min` (0.1)
over the epochs, as in the paper. Cost per step is that of one path, not of every op. `defence="beta"` adds
beta-DARTS' regularisation of alpha (see `nasforge.oneshot.darts`); DARTS-'s auxiliary skip, which joins
mixed ops, does not apply.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from nasforge.errors import NasforgeError
from nasforge.estimators.training import check_number
from nasforge.oneshot.darts import Darts

__all__ = ["Gdas", "gumbel_straight_through"]


def gumbel_straight_through(alpha: torch.Tensor, tau: float, generator: torch.Generator) -> tuple[torch.Tensor, tuple[int, ...]]:
    """(hard straight-through weights, sampled index per row) of a Gumbel-softmax sample of `alpha`'s rows."""
    uniform = torch.rand(alpha.shape, generator=generator).clamp_(1e-20, 1.0).to(alpha.device)
    gumbel = -torch.log(-torch.log(uniform))
    soft = torch.softmax((torch.log_softmax(alpha, dim=-1) + gumbel) / tau, dim=-1)
    index = soft.argmax(-1)
    hard = torch.zeros_like(soft).scatter_(-1, index[:, None], 1.0)
    return hard - soft.detach() + soft, tuple(int(i) for i in index)


class Gdas(Darts):
    """GDAS; options as `Darts` (of the defences, beta-decay only) plus the temperature schedule's ends."""

    name = "gdas"

    def __init__(self, *, tau_max: float = 10.0, tau_min: float = 0.1, **options: Any) -> None:
        if options.get("defence") not in (None, "beta"):  # the auxiliary skip joins mixed ops only
            raise NasforgeError(f"defence: '{options['defence']}' does not apply to gdas, which runs one op per edge "
                                "(allowed: beta, or none)")
        super().__init__(**options)
        check_number("tau_min", tau_min, 0.0, math.inf)
        check_number("tau_max", tau_max, tau_min, math.inf)
        if tau_min == 0:
            raise NasforgeError("tau_min: must be > 0 (a temperature of 0 divides by zero)")
        self.tau_max, self.tau_min, self.tau = tau_max, tau_min, tau_max

    def _begin_epoch(self, epoch: int) -> None:
        super()._begin_epoch(epoch)
        self.tau = self.tau_max - (self.tau_max - self.tau_min) * epoch / max(1, self.epochs - 1)

    def arch_forward(self, x: torch.Tensor, *, detach: bool) -> torch.Tensor:
        weights, path = gumbel_straight_through(self.logits(), self.tau, self.generator)
        return self.supernet(x, weights=weights.detach() if detach else weights, path=path)

    def monitor(self) -> dict[str, Any]:
        return {**super().monitor(), "tau": self.tau}
