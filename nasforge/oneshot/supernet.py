"""What every weight-sharing supernet is, and BatchNorm recalibration of the subnets it hands out.

A supernet holds every candidate op of every decision of a `ChoiceSpace` once, with shared weights
(Bender et al., 2018, "Understanding and Simplifying One-Shot Architecture Search"). `forward` runs it
in one of three modes, chosen by which of `weights` and `path` are given:

- `weights` only, a (rows, options) tensor, one row per `weight_sizes` entry: every op, summed with
  those weights — DARTS' mixed op (Liu et al., 2019) when the rows are softmax(alpha);
- `path` only, one option index per decision: only the chosen ops run (SPOS, ENAS), with the same
  arithmetic as the standalone network of that architecture, so `extract(path)` gives identical outputs;
- both: only `path`'s ops run, each scaled by its weight, and the other weights are added as zeros
  that carry gradient — GDAS' straight-through Gumbel sample (Dong & Yang, 2019); here `path` holds one
  option index per row of `weights`.

The rows of `weights` are the space's decisions unless a supernet says otherwise (`weight_sizes`,
`derivable`, `derive`): DARTS' own supernet weighs every op of each of its 14 edges per cell, while the
darts space decides an (op, input) pair per node input.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from functools import reduce
from typing import Callable, Sequence

import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.spaces.base import Arch
from nasforge.spaces.choices import ChoiceSpace

__all__ = ["Supernet", "mixed_edge", "recalibrate_bn"]


class Supernet(nn.Module, ABC):
    """A network holding every architecture of `space` with shared weights.

    `derivable` is a (rows, options) bool mask of the options a derivation may pick (NB201's
    derivation never picks `none`); options beyond a row's count are never derivable.
    """

    space: ChoiceSpace

    @property
    def sizes(self) -> tuple[int, ...]:
        """The number of options of each decision."""
        return tuple(len(c.options) for c in self.space.choices)

    @property
    def weight_sizes(self) -> tuple[int, ...]:
        """The number of options of each row of `weights` (mixed and straight-through modes): by default
        one row per decision, `sizes`."""
        return self.sizes

    @property
    @abstractmethod
    def derivable(self) -> torch.Tensor:
        """(rows, max options) bool mask of the options a derivation may pick."""

    @abstractmethod
    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None,
                path: Sequence[int] | None = None) -> torch.Tensor:
        """Logits of `x` through the mixed ops (`weights`), one path (`path`), or both (see the module)."""

    @abstractmethod
    def extract(self, arch: Arch) -> nn.Module:
        """`space.build(arch)`, holding copies of this supernet's weights on `arch`'s path."""

    def inherit(self, net: nn.Module, key: Callable[[str], str]) -> nn.Module:
        """`net`, a standalone network of the space, holding copies of this supernet's weights (`key` maps
        each of its state names to the supernet's), on this supernet's device. A BatchNorm scale or shift
        that a supernet built with `affine=False` does not learn is set to 1 or 0: the same arithmetic."""
        state, own = self.state_dict(), net.state_dict()
        norms = {f"{name}.{p}": p for name, m in net.named_modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine for p in ("weight", "bias")}
        weights = {}
        for k, value in own.items():
            if key(k) in state:
                weights[k] = state[key(k)].clone()
            elif k in norms:
                weights[k] = torch.ones_like(value) if norms[k] == "weight" else torch.zeros_like(value)
            else:
                raise KeyError(f"{type(self).__name__}: no weight '{key(k)}' for the subnet's '{k}'")
        net.load_state_dict(weights)
        return net.to(next(self.parameters()).device)

    def path(self, arch: Arch) -> tuple[int, ...]:
        """The option index of each decision of `arch`."""
        return tuple(self.space.decisions(arch))

    def derive(self, weights: torch.Tensor) -> Arch:
        """The architecture of the strongest derivable option of each decision (DARTS' derivation), for
        the default layout of one row of `weights` per decision."""
        masked = weights.detach().cpu().masked_fill(~self.derivable, -torch.inf)
        return self.space.decode([int(i) for i in masked.argmax(1)])


def mixed_edge(ops: Sequence[nn.Module], x: torch.Tensor, w: torch.Tensor, choice: int | None, none: int,
               aux_skip: float = 0.0) -> torch.Tensor:
    """One cell edge of candidate `ops` on `x` under its row of weights `w`: with `choice` None, DARTS' mixed
    op, every op but `none` weighted and summed (`none` adds w * 0 = 0, and its weight still gets the
    softmax's gradient); else the straight-through sample, the chosen op scaled by its (one-valued) weight
    plus the zero-valued rest. DARTS- (Chu et al., 2021) adds `aux_skip` * x: an auxiliary skip connection,
    decayed to zero over the search, carries the residual gradient, so the skip_connect op no longer wins
    by providing it."""
    if choice is None:
        out = reduce(operator.add, (w[o] * op(x) for o, op in enumerate(ops) if o != none))
    else:
        out = w[choice] * ops[choice](x) + torch.cat([w[:choice], w[choice + 1:]]).sum()
    return out + aux_skip * x if aux_skip else out


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int = 256, *,
                   path: Sequence[int] | None = None) -> nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them as exact averages over `x`, in
    train mode, then leave `model` in eval mode (SPOS, Guo et al., 2020: statistics gathered under the
    supernet's mixture of paths do not fit any one subnet). `path` is handed to a `Supernet`'s forward.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model.eval()
    if len(x) < 2:
        raise NasforgeError(f"calibration: BatchNorm needs at least 2 images, got {len(x)}")
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts alike
    model.train()
    try:
        for i in range(0, len(x) - 1, batch_size):  # a trailing single image would break BN
            batch = x[i : i + batch_size]
            model(batch) if path is None else model(batch, path=path)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
    return model.eval()
