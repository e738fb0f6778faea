"""Every proxy by name, and `compute_proxies`: the proxies of one network from one mini-batch, sharing passes.

Each proxy is higher-is-better (a higher score predicts a higher accuracy). A proxy that is undefined
for a network (e.g. jacob_cov of a network whose output does not depend on its input) or overflows
(synflow of a very deep one) or raises is not an error of the search: its value is NaN and `flags`
says why; rankings place NaN last.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.estimators.zero_cost import activation, saliency, size
from nasforge.estimators.zero_cost.probe import Probe

__all__ = ["PROXIES", "Proxy", "ProxyScores", "compute_proxies"]


@dataclass(frozen=True)
class Inputs:
    """What a proxy may read: the network, the batch, the shared probe and a seeded generator."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    probe: Probe | None
    generator: torch.Generator


@dataclass(frozen=True)
class Proxy:
    """How to compute one proxy: a function of `Inputs`, and what it needs of the shared probe."""

    score: Callable[[Inputs], float]
    needs: frozenset[str] = frozenset()


PROXIES: dict[str, Proxy] = {
    "synflow": Proxy(lambda i: saliency.synflow(i.model, tuple(i.x.shape[1:]))),
    "snip": Proxy(lambda i: saliency.snip(i.probe), frozenset({"grads"})),
    "grasp": Proxy(lambda i: saliency.grasp(i.probe), frozenset({"grads", "hessian"})),
    "fisher": Proxy(lambda i: saliency.fisher(i.probe), frozenset({"fisher"})),
    "grad_norm": Proxy(lambda i: saliency.grad_norm(i.probe), frozenset({"grads"})),
    "jacob_cov": Proxy(lambda i: activation.jacob_cov(i.probe), frozenset({"jacobian"})),
    "naswot": Proxy(lambda i: activation.naswot(i.probe), frozenset({"codes"})),
    "zen": Proxy(lambda i: activation.zen(i.model, tuple(i.x.shape[1:]), len(i.x), i.generator)),
    "l2_norm": Proxy(lambda i: size.l2_norm(i.model)),
    "params": Proxy(lambda i: size.params(i.model)),
    "flops": Proxy(lambda i: size.flops(i.model, tuple(i.x.shape[1:]))),
}


@dataclass(frozen=True)
class ProxyScores:
    """Proxy values (NaN where undefined), why each NaN is one, and the seconds spent: `seconds[name]`
    for a proxy's own work, `seconds["probe"]` for the pass the data-dependent ones shared."""

    values: dict[str, float]
    flags: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def compute_proxies(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: Sequence[str] | None = None, *,
                    seed: int = 0) -> ProxyScores:
    """The proxies `names` (default: all) of `model` on the labelled batch (x, y), the network and the
    batch unchanged. Deterministic for `seed` (zen's Gaussian inputs and weights draw from it)."""
    names = list(PROXIES) if names is None else list(names)
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise NasforgeError(f"proxies: unknown '{unknown[0]}' (allowed: {', '.join(PROXIES)})")
    needs = frozenset().union(*(PROXIES[n].needs for n in names))
    values: dict[str, float] = {}
    flags: dict[str, str] = {}
    seconds: dict[str, float] = {}
    probe, probe_error = None, None
    if needs:
        start = time.perf_counter()
        try:
            probe = Probe.run(model, x, y, needs)
        except (RuntimeError, ValueError, FloatingPointError) as error:
            probe_error = f"the shared pass failed: {error}"
        seconds["probe"] = time.perf_counter() - start
    inputs = Inputs(model, x, y, probe, torch.Generator().manual_seed(seed))
    for name in names:
        start = time.perf_counter()
        if PROXIES[name].needs and probe is None:
            value, flag = math.nan, probe_error
        else:
            value, flag = _safely(PROXIES[name].score, inputs)
        values[name] = value
        if flag:
            flags[name] = flag
        seconds[name] = time.perf_counter() - start
    return ProxyScores(values, flags, seconds)


def _safely(score: Callable[[Inputs], float], inputs: Inputs) -> tuple[float, str | None]:
    """(value, None), or (NaN, why) when the proxy raises or is not a finite number."""
    try:
        value = float(score(inputs))
    except (RuntimeError, ValueError, FloatingPointError, ArithmeticError) as error:
        return math.nan, f"failed: {error}"
    if math.isfinite(value):
        return value, None
    return math.nan, f"not finite ({value})"
