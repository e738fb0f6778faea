"""DARTS, first order (Liu, Simonyan & Yang, 2019, "DARTS: Differentiable Architecture Search").

Every edge of the supernet is a mixed op, the softmax(alpha)-weighted sum of its candidates. Each step
alternates the bilevel problem's two updates: alpha takes one Adam step on the loss of a validation
batch (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3, as the paper), the gradient taken with respect to
alpha only; then the weights take one SGD step on a training batch with alpha held fixed (detached), so
alpha never sees the training loss. First order: the weights are not unrolled (the paper's second-order
variant costs two more forward-backward passes per step, and on NAS-Bench-201 both orders collapse).

The derived architecture is the strongest non-`none` op of each edge. Left alone, DARTS collapses to
parameter-free ops, skip connections above all (Dong & Yang, 2020 report all-skip_connect cells on
NAS-Bench-201). `defence="auxskip"` is DARTS- (Chu et al., 2021, "DARTS-: Robustly Stepping out of
Performance Collapse Without Indicators"): an auxiliary skip connection beside every mixed op, its weight
decayed linearly from 1 to 0 over the search, hands the residual gradient to every op alike, so the
skip_connect op no longer wins by supplying it. The monitor logs the derived cell's share of skip and
pool ops and the mean entropy of the edges' softmax(alpha) each epoch: collapse shows as the skip share
rising while the entropy falls.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from nasforge.errors import NasforgeError
from nasforge.estimators.training import check_number
from nasforge.oneshot.trainer import OneShot
from nasforge.spaces.base import Arch

__all__ = ["DEFENCES", "Darts"]

#: collapse defences: name -> paper
DEFENCES = {"auxskip": "DARTS- (Chu et al., 2021): auxiliary skip connection, weight decayed 1 -> 0"}


class Darts(OneShot):
    """First-order DARTS; `defence` None or one of `DEFENCES`; other options as `OneShot`."""

    name = "darts"
    alpha_betas = (0.5, 0.999)  # Adam's betas for alpha, as the paper

    def __init__(self, *, alpha_lr: float = 3e-4, alpha_weight_decay: float = 1e-3, defence: str | None = None,
                 **options: Any) -> None:
        super().__init__(**options)
        check_number("alpha_lr", alpha_lr, 0.0, math.inf)
        check_number("alpha_weight_decay", alpha_weight_decay, 0.0, math.inf)
        if defence is not None and defence not in DEFENCES:
            raise NasforgeError(f"defence: '{defence}' is not allowed (allowed: {', '.join(DEFENCES)}, or none)")
        self.alpha_lr, self.alpha_weight_decay, self.defence = alpha_lr, alpha_weight_decay, defence

    def _setup(self) -> None:
        shape = (len(self.supernet.sizes), max(self.supernet.sizes))
        # the paper's init: 1e-3 * N(0, 1), near-uniform mixing weights
        self.alpha = (1e-3 * torch.randn(shape, generator=self.generator)).to(self._device).requires_grad_()
        self.alpha_optimizer = torch.optim.Adam([self.alpha], lr=self.alpha_lr, betas=self.alpha_betas,
                                                weight_decay=self.alpha_weight_decay)

    def logits(self) -> torch.Tensor:
        """alpha with the padding columns of decisions with fewer options at -inf: they get no weight and
        are never sampled (every NB201 edge has all 5 options; MobileNet's decisions have 2 or 3)."""
        sizes = torch.tensor(self.supernet.sizes, device=self.alpha.device)
        padding = torch.arange(self.alpha.shape[1], device=self.alpha.device)[None, :] >= sizes[:, None]
        return self.alpha.masked_fill(padding, -math.inf)

    def probs(self) -> torch.Tensor:
        """softmax(alpha) of each decision over its own options (padding columns get zero)."""
        return torch.softmax(self.logits(), dim=-1)

    def alpha_entropy(self) -> float:
        """Mean entropy (nats) of the decisions' softmax(alpha): falls as the search commits."""
        probs = self.probs().detach()
        return -(probs * probs.clamp_min(1e-30).log()).sum(1).mean().item()

    def _begin_epoch(self, epoch: int) -> None:
        self.supernet.aux_skip = 1.0 - epoch / self.epochs if self.defence == "auxskip" else 0.0

    def arch_forward(self, x: torch.Tensor, *, detach: bool) -> torch.Tensor:
        """The supernet's logits under the current architecture distribution (alpha held fixed if `detach`)."""
        weights = self.probs()
        return self.supernet(x, weights=weights.detach() if detach else weights)

    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.alpha_step(x_val, y_val)
        logits = self.arch_forward(x, detach=True)
        loss = self.loss(logits, y)
        self.weight_step(loss)
        return loss.detach(), logits.detach()

    def alpha_step(self, x_val: torch.Tensor, y_val: torch.Tensor) -> None:
        """One Adam step of alpha on a validation batch; the weights' gradients are left untouched."""
        loss = self.loss(self.arch_forward(x_val, detach=False), y_val)
        (self.alpha.grad,) = torch.autograd.grad(loss, [self.alpha])
        self.alpha_optimizer.step()

    def derive(self) -> Arch:
        """The strongest non-`none` op of each edge under the current alpha."""
        return self.supernet.derive(self.probs().detach())

    def candidates(self) -> list[Arch]:
        return [self.derive()]

    def monitor(self) -> dict[str, Any]:
        arch = self.derive()
        ops = [str(choice.options[i]) for choice, i in zip(self.space.choices, self.space.decisions(arch))]
        return {"arch": arch.key, "skip_share": sum("skip" in op for op in ops) / len(ops),
                "pool_share": sum("pool" in op for op in ops) / len(ops), "alpha_entropy": self.alpha_entropy(),
                **({"aux_skip": self.supernet.aux_skip} if self.defence else {})}

    def _method_state(self) -> dict[str, Any]:
        return {"alpha": self.alpha.detach().clone(), "alpha_optimizer": self.alpha_optimizer.state_dict()}

    def _load_method_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.alpha.copy_(state["alpha"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
