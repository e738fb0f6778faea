"""ProxylessNAS (Cai, Zhu & Han, 2019, "ProxylessNAS: Direct Neural Architecture Search on Target Task and
Hardware") on the MobileNet supernet.

Binarized paths: each step samples one option per decision from p = softmax(alpha), and only the sampled
blocks run — the memory of one path, not of every candidate. The weights take an SGD step on a training
batch through the sampled path; alpha takes an Adam step (lr 1e-3, betas (0, 0.999), no weight decay, as
the paper's code) on a validation batch, with the loss

    cross-entropy + latency_weight * E[LAT],

the paper's Eq. 7 (its lambda_2 in 1/ms). E[LAT] is the exact expected latency in milliseconds of a network
drawn with p (`MobileNetSupernet.expected_cost`: each block position's candidates weighted by the product
of their decisions' probabilities, blocks by the probability that the stage's depth reaches them, each
width by its own), from a latency lookup table (`nasforge.hardware.lookup`, FBNet-style, plus its fixed
overhead) or from a callable (unit module, per-sample input shape) -> ms; it is differentiable in alpha.

Gradient of the cross-entropy to alpha: the binary gates g = onehot(sampled) with the straight-through
estimator (Bengio et al., 2013) that the supernet's gated mode gives, g_j = onehot_j + onehot_j * (p_j -
stop_grad(p_j)). The forward is exactly the sampled path and dL/dp_j = <dL/dx_out, o_j(x)> for the sampled
option j, zero for the others, so dL/dalpha_i = dL/dp_j p_j (delta_ij - p_i): the paper's Eq. 4 with the
gate gradient known on the sampled path only (the paper samples two paths and rescales them; one path
keeps the memory of one). The derived architecture is the argmax of each decision.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Callable, Union

import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.estimators.training import check_number
from nasforge.hardware.lookup import LatencyTable, load_table, model_units
from nasforge.oneshot.darts import Darts
from nasforge.spaces.mobilenet import MobileNetSpace

__all__ = ["Latency", "Proxyless"]

#: where latencies come from: a lookup table, the path of one, or (unit, per-sample input shape) -> ms
Latency = Union[LatencyTable, str, Path, Callable[[nn.Module, tuple], float]]


class Proxyless(Darts):
    """ProxylessNAS; `latency` a lookup table (or its path) or a unit-latency callable, `latency_weight`
    the weight of E[LAT] (1/ms) in alpha's loss; other options as `Darts` (without a defence)."""

    name = "proxyless"
    alpha_betas = (0.0, 0.999)  # as the paper's code

    def __init__(self, *, latency: Latency | None = None, latency_weight: float = 0.0, alpha_lr: float = 1e-3,
                 alpha_weight_decay: float = 0.0, **options: Any) -> None:
        if options.get("defence") is not None:
            raise NasforgeError("defence: proxyless takes none (allowed: none)")
        super().__init__(alpha_lr=alpha_lr, alpha_weight_decay=alpha_weight_decay, **options)
        if not isinstance(self.space, MobileNetSpace):
            raise NasforgeError(f"space: proxyless searches the mobilenet space, got '{self.space.name}'")
        check_number("latency_weight", latency_weight, 0.0, math.inf)
        if isinstance(latency, (str, Path)):
            latency = load_table(latency, space=self.space.name)
        if latency is not None and not isinstance(latency, LatencyTable) and not callable(latency):
            raise NasforgeError(f"latency: expected a lookup table, its path or a callable, got {type(latency).__name__}")
        if latency is None and latency_weight > 0:
            raise NasforgeError("latency: latency_weight > 0 needs a lookup table or a latency callable")
        if isinstance(latency, LatencyTable) and tuple(latency.input_shape) != tuple(self.data.input_shape):
            raise NasforgeError(f"latency: the table was measured for input {tuple(latency.input_shape)}, "
                                f"the data is {tuple(self.data.input_shape)}")
        self.latency, self.latency_weight = latency, latency_weight

    def _setup(self) -> None:
        super()._setup()
        self.costs = self.supernet.unit_costs(self._layer_ms) if self.latency is not None else None

    def _layer_ms(self, chain: nn.Sequential) -> list[float]:
        """Milliseconds of each layer of a chain of the supernet's modules (timed on the CPU)."""
        chain = copy.deepcopy(chain).cpu()
        if isinstance(self.latency, LatencyTable):  # units missing from the table are timed now
            return [self.latency.entry(*unit) for unit in self.latency.units_of(chain)]
        return [float(self.latency(module, shape)) for _, module, shape in model_units(chain, self.data.input_shape)]

    def _begin_epoch(self, epoch: int) -> None:
        pass  # no schedule

    def expected_latency(self, probs: torch.Tensor | None = None) -> torch.Tensor:
        """E[LAT] in ms of a network drawn with `probs` (default: the current ones), the table's overhead included."""
        if self.costs is None:
            raise NasforgeError("latency: no lookup table or latency callable was given")
        probs = self.probs() if probs is None else probs
        overhead = self.latency.overhead_ms if isinstance(self.latency, LatencyTable) else 0.0
        return overhead + self.supernet.expected_cost(probs, *self.costs)

    def sample(self) -> tuple[int, ...]:
        """One option per decision, drawn from softmax(alpha) (the trainer's generator)."""
        return tuple(int(i) for i in torch.multinomial(self.probs().detach().cpu(), 1, generator=self.generator)[:, 0])

    def arch_forward(self, x: torch.Tensor, *, detach: bool) -> torch.Tensor:
        path = self.sample()
        if detach:
            return self.supernet(x, path=path)
        p = self.probs()
        hot = nn.functional.one_hot(torch.tensor(path, device=p.device), p.shape[1]).to(p.dtype)
        return self.supernet(x, weights=hot + hot * (p - p.detach()), path=path)

    def alpha_step(self, x_val: torch.Tensor, y_val: torch.Tensor) -> None:
        loss = self.loss(self.arch_forward(x_val, detach=False), y_val)
        if self.latency_weight:
            loss = loss + self.latency_weight * self.expected_latency()
        (self.alpha.grad,) = torch.autograd.grad(loss, [self.alpha])
        self.alpha_optimizer.step()

    def monitor(self) -> dict[str, Any]:
        probs = self.probs().detach()
        row: dict[str, Any] = {"arch": self.derive().key, "alpha_entropy": self.alpha_entropy()}
        if self.costs is not None:
            derived = nn.functional.one_hot(torch.tensor(self.supernet.path(self.derive())), probs.shape[1])
            row.update(expected_latency_ms=self.expected_latency(probs).item(),
                       derived_latency_ms=self.expected_latency(derived.to(probs)).item())
        return row

    def _method_state(self) -> dict[str, Any]:
        return {**super()._method_state(), "costs": self.costs}

    def _load_method_state(self, state: dict[str, Any]) -> None:
        super()._load_method_state(state)
        self.costs = state["costs"]
