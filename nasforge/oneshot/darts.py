"""DARTS, first and second order (Liu, Simonyan & Yang, 2019, "DARTS: Differentiable Architecture Search").

Every edge of the supernet is a mixed op, the softmax(alpha)-weighted sum of its candidates. Each step
alternates the bilevel problem's two updates: alpha takes one Adam step on the loss of a validation
batch (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3, as the paper), the gradient taken with respect to
alpha only; then the weights take one SGD step on a training batch with alpha held fixed (detached), so
alpha never sees the training loss. First order (the default): the weights are not unrolled.
`warmup_epochs` first epochs train the weights only, alpha frozen (as the NAS-Bench-201 and DARTS- code
bases warm up), so that alpha's first steps compare trained ops, not freshly initialised ones.

`order=2` is the paper's second-order approximation (its Eq. 7 and 8): alpha's gradient is

    grad_alpha L_val(w', alpha) - xi (grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 eps)

with w' = w - xi grad_w L_train(w, alpha) one virtual SGD step (xi the weights' current learning rate;
plain SGD as in the paper's equations, whose code also adds momentum and weight decay), w+- = w +- eps
grad_w' L_val(w', alpha) and eps = 0.01 / ||grad_w' L_val(w', alpha)||: the finite difference stands for
the Hessian-vector product. It costs three more forward-backward passes per step; the unrolled and
perturbed weights are never written into the supernet, so its weights are left exactly as they were.
On NAS-Bench-201 both orders collapse (Dong & Yang, 2020).

The derived architecture is the strongest non-`none` op of each edge (in the darts space, of each node's 2
incoming edges whose strongest such op is strongest, as DARTS' `genotype()`). Left alone, DARTS collapses to
parameter-free ops, skip connections above all (Dong & Yang, 2020 report all-skip_connect cells on
NAS-Bench-201). `defence="auxskip"` is DARTS- (Chu et al., 2021, "DARTS-: Robustly Stepping out of
Performance Collapse Without Indicators"): an auxiliary skip connection beside every mixed op, its weight
decayed linearly from 1 to 0 over the search, hands the residual gradient to every op alike, so the
skip_connect op no longer wins by supplying it. `defence="beta"` is beta-DARTS (Ye et al., 2022, "beta-DARTS:
Beta-Decay Regularization for Differentiable Architecture Search"): alpha's validation loss gets
lambda * mean over edges of logsumexp(alpha_edge), whose gradient lambda * softmax(alpha_edge) / edges pulls
the strongest ops' alphas down hardest, so no op's mixing weight runs away early and the final argmax
reflects the whole search; lambda grows linearly from 0 to `beta_weight` over the epochs. Unlike the
auxiliary skip it leaves the skip op's own use intact (NAS-Bench-201's best cells keep skip_connect on
edge 0->3). The monitor logs the derived cell's share of skip and
pool ops and the mean entropy of the edges' softmax(alpha) each epoch: collapse shows as the skip share
rising while the entropy falls.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.func import functional_call

from nasforge.errors import NasforgeError
from nasforge.estimators.training import check_number, check_whole
from nasforge.oneshot.trainer import OneShot
from nasforge.spaces.base import Arch

__all__ = ["DEFENCES", "Darts"]

ORDERS = (1, 2)  # first order; the paper's second-order approximation

#: collapse defences: name -> paper
DEFENCES = {"auxskip": "DARTS- (Chu et al., 2021): auxiliary skip connection, weight decayed 1 -> 0",
            "beta": "beta-DARTS (Ye et al., 2022): beta-decay regularisation of alpha, weight 0 -> beta_weight"}


class Darts(OneShot):
    """DARTS of `order` 1 or 2 (see the module); `defence` None or one of `DEFENCES` (`beta_weight`: the
    beta-decay regularisation's final weight); other options as `OneShot`."""

    name = "darts"
    alpha_betas = (0.5, 0.999)  # Adam's betas for alpha, as the paper

    def __init__(self, *, alpha_lr: float = 3e-4, alpha_weight_decay: float = 1e-3, defence: str | None = None,
                 warmup_epochs: int = 0, order: int = 1, beta_weight: float = 1.0, **options: Any) -> None:
        super().__init__(**options)
        check_whole("warmup_epochs", warmup_epochs, 0)
        check_number("beta_weight", beta_weight, 0.0, math.inf)
        check_number("alpha_lr", alpha_lr, 0.0, math.inf)
        check_number("alpha_weight_decay", alpha_weight_decay, 0.0, math.inf)
        if defence is not None and defence not in DEFENCES:
            raise NasforgeError(f"defence: '{defence}' is not allowed (allowed: {', '.join(DEFENCES)}, or none)")
        if type(order) is not int or order not in ORDERS:
            raise NasforgeError(f"order: {order!r} is not allowed (allowed: {', '.join(map(str, ORDERS))})")
        if order != 1 and self.name != Darts.name:  # the unrolled step differentiates the mixed ops
            raise NasforgeError(f"order: {self.name} is first order only (allowed: 1)")
        self.order = order
        self.alpha_lr, self.alpha_weight_decay, self.defence = alpha_lr, alpha_weight_decay, defence
        self.warmup_epochs, self.beta_weight = warmup_epochs, beta_weight
        self.beta = 0.0  # this epoch's weight of the beta-decay regularisation

    def _setup(self) -> None:
        shape = (len(self.supernet.weight_sizes), max(self.supernet.weight_sizes))
        # the paper's init: 1e-3 * N(0, 1), near-uniform mixing weights
        self.alpha = (1e-3 * torch.randn(shape, generator=self.generator)).to(self._device).requires_grad_()
        self.alpha_optimizer = torch.optim.Adam([self.alpha], lr=self.alpha_lr, betas=self.alpha_betas,
                                                weight_decay=self.alpha_weight_decay)

    def logits(self) -> torch.Tensor:
        """alpha with the padding columns of rows with fewer options at -inf: they get no weight and
        are never sampled (every NB201 edge has all 5 options; MobileNet's decisions have 2 or 3)."""
        sizes = torch.tensor(self.supernet.weight_sizes, device=self.alpha.device)
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
        self.beta = self.beta_weight * epoch / max(1, self.epochs - 1) if self.defence == "beta" else 0.0

    def alpha_penalty(self) -> torch.Tensor:
        """What alpha's loss adds to the validation loss: beta-DARTS' beta-decay term (0 without it)."""
        return self.beta * torch.logsumexp(self.logits(), dim=-1).mean()

    def arch_forward(self, x: torch.Tensor, *, detach: bool) -> torch.Tensor:
        """The supernet's logits under the current architecture distribution (alpha held fixed if `detach`)."""
        weights = self.probs()
        return self.supernet(x, weights=weights.detach() if detach else weights)

    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.log) >= self.warmup_epochs:  # the log holds one row per finished epoch
            if self.order == 2:
                self.unrolled_alpha_step(x, y, x_val, y_val)
            else:
                self.alpha_step(x_val, y_val)
        logits = self.arch_forward(x, detach=True)
        loss = self.loss(logits, y)
        self.weight_step(loss)
        return loss.detach(), logits.detach()

    def alpha_step(self, x_val: torch.Tensor, y_val: torch.Tensor) -> None:
        """One Adam step of alpha on a validation batch; the weights' gradients are left untouched."""
        loss = self.loss(self.arch_forward(x_val, detach=False), y_val) + self.alpha_penalty()
        (self.alpha.grad,) = torch.autograd.grad(loss, [self.alpha])
        self.alpha_optimizer.step()

    def unrolled_alpha_step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> None:
        """One Adam step of alpha with the second-order gradient (see the module); the weights, their
        gradients and BatchNorm's running statistics are left untouched (the virtual weights and copies of
        the buffers go through `functional_call`)."""
        names, w = zip(*self.supernet.named_parameters())
        xi = self.optimizer.param_groups[0]["lr"]

        def loss(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
            state = {**{name: b.clone() for name, b in self.supernet.named_buffers()}, **dict(zip(names, params))}
            return self.loss(functional_call(self.supernet, state, (x,), {"weights": weights}), y)

        def grad(value: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
            return list(torch.autograd.grad(value, inputs, allow_unused=True, materialize_grads=True))

        weights = self.probs()
        unrolled = [(p - xi * g).detach().requires_grad_() for p, g in zip(w, grad(loss(w, x, y, weights.detach()), w))]
        alpha_grad, *dw = grad(loss(unrolled, x_val, y_val, weights), [self.alpha, *unrolled])
        eps = 0.01 / torch.cat([g.flatten() for g in dw]).norm().clamp_min(1e-12)  # a zero gradient: no Hessian term
        train_grad = [grad(loss([p.detach() + sign * eps * g for p, g in zip(w, dw)], x, y, self.probs()), [self.alpha])[0]
                      for sign in (1, -1)]
        (penalty,) = torch.autograd.grad(self.alpha_penalty(), [self.alpha], materialize_grads=True)
        self.alpha.grad = alpha_grad - xi * (train_grad[0] - train_grad[1]) / (2 * eps) + penalty
        self.alpha_optimizer.step()

    def derive(self) -> Arch:
        """The supernet's derivation under the current alpha: the strongest non-`none` op of each edge (in the
        darts space, of the 2 strongest incoming edges of each node: DARTS' genotype)."""
        return self.supernet.derive(self.probs().detach())

    def candidates(self) -> list[Arch]:
        return [self.derive()]

    def monitor(self) -> dict[str, Any]:
        arch = self.derive()
        ops = [str(choice.options[i]) for choice, i in zip(self.space.choices, self.space.decisions(arch))
               if isinstance(choice.options[i], str)]  # the op decisions (not the darts space's inputs)
        return {"arch": arch.key, "skip_share": sum("skip" in op for op in ops) / len(ops),
                "pool_share": sum("pool" in op for op in ops) / len(ops), "alpha_entropy": self.alpha_entropy(),
                **({"aux_skip": self.supernet.aux_skip} if self.defence == "auxskip" else {}),
                **({"beta": self.beta} if self.defence == "beta" else {})}

    def _method_state(self) -> dict[str, Any]:
        return {"alpha": self.alpha.detach().clone(), "alpha_optimizer": self.alpha_optimizer.state_dict()}

    def _load_method_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.alpha.copy_(state["alpha"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
