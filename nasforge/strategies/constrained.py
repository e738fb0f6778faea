"""Hard limits on parameters, FLOPs and latency, for any strategy: infeasible candidates are never evaluated.

`Constrained(strategy, constraints, costs)` is itself a `Strategy`: each ask draws from the inner strategy
until a candidate keeps every limit. A candidate that breaks one is rejected before evaluation: the inner
strategy is told a failed `Result` ("infeasible: params 2,310,000 > max_params 1,000,000"), so it learns to
avoid it, and asked again. Rejections are not trials (they use no budget); `rejected` counts them.

Costs are cached by arch key, and the cache is part of the state. Params and FLOPs are deterministic, so
a resumed run decides exactly as before. Latency is measured: a resumed run re-measures architectures
first seen after the last saved state, and one within noise of the limit may then be decided otherwise
(the runner reports that as a resume mismatch); architectures already in the cache are decided as before.

>>> from nasforge.spaces import create_space
>>> from nasforge.strategies import create_strategy
>>> space = create_space("nb201")
>>> limits = Constraints(max_params=500_000)
>>> strategy = Constrained(create_strategy("random", space, seed=0), limits,
...                        model_cost_function(space, (3, 32, 32), 10, limits))
>>> strategy.costs(strategy.ask())["params"] <= 500_000
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.hardware import COST_MEASURES
from nasforge.spaces.base import Arch, SearchSpace
from nasforge.strategies.base import Strategy

__all__ = ["Constrained", "Constraints", "model_cost_function"]

#: each limit and the cost metric it bounds from above
LIMITS = {"max_params": "params", "max_flops": "flops", "max_latency_ms": "latency_ms"}



@dataclass(frozen=True)
class Constraints:
    """Upper limits a candidate must keep; `None` leaves a cost free.

    `max_params`: trainable parameters; `max_flops`: FLOPs of one forward pass at batch 1 (2 per
    multiply-add, `nasforge.hardware.count_flops`); `max_latency_ms`: median CPU latency at batch 1, in ms.
    """

    max_params: int | None = None
    max_flops: float | None = None
    max_latency_ms: float | None = None

    def __post_init__(self) -> None:
        for name in LIMITS:
            value = getattr(self, name)
            if value is None:
                continue
            whole = name == "max_params"
            number = not isinstance(value, bool) and isinstance(value, int if whole else (int, float))
            if not number or not math.isfinite(value):
                raise NasforgeError(f"{name}: must be {'a whole' if whole else 'a finite'} number, got {value!r}")
            if value <= 0:
                raise NasforgeError(f"{name}: must be > 0, got {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Constraints":
        """Constraints from a config's mapping, refusing unknown keys by name."""
        if not isinstance(values, Mapping):
            raise NasforgeError(f"constraints: must be a mapping of limits ({', '.join(LIMITS)}), got {values!r}")
        unknown = sorted(set(values) - set(LIMITS))
        if unknown:
            raise NasforgeError(f"constraints: unknown limit '{unknown[0]}' (allowed: {', '.join(LIMITS)})")
        return cls(**values)

    @property
    def limits(self) -> dict[str, float]:
        """Cost metric -> its limit, for the limits that are set."""
        return {metric: getattr(self, name) for name, metric in LIMITS.items() if getattr(self, name) is not None}

    def violations(self, costs: Mapping[str, float]) -> list[str]:
        """One message per limit the given `costs` break ("params 2,310,000 > max_params 1,000,000")."""
        return [f"{metric} {_shown(costs[metric])} > {name} {_shown(getattr(self, name))}"
                for name, metric in LIMITS.items()
                if getattr(self, name) is not None and metric in costs and costs[metric] > getattr(self, name)]


def model_cost_function(space: SearchSpace, input_shape: tuple[int, ...], num_classes: int,
                        constraints: Constraints) -> Callable[[Arch], dict[str, float]]:
    """`costs(arch)`: the metrics `constraints` limits, measured on `space.build(arch, input_shape, num_classes)`.

    Only limited metrics are measured, cheapest first (params, FLOPs, latency), stopping at the first one
    over its limit: FLOP counting and latency cost far more than building. The network is built inside a
    forked torch RNG, leaving the global RNG as it was.
    """
    limits = constraints.limits

    def costs(arch: Arch) -> dict[str, float]:
        with torch.random.fork_rng(devices=[]):
            model = space.build(arch, input_shape, num_classes)
        measured: dict[str, float] = {}
        for metric, limit in limits.items():
            measured[metric] = COST_MEASURES[metric](model, input_shape)
            if measured[metric] > limit:
                break
        return measured

    return costs


class Constrained(Strategy):
    """`strategy`, with every candidate that breaks `constraints` rejected before evaluation.

    `costs(arch)` returns the metrics `constraints` limits — all of them, or enough to break a limit
    (e.g. `model_cost_function`). After `max_tries` rejections in a row within one ask, the constraints
    are declared unsatisfiable.
    """

    def __init__(self, strategy: Strategy, constraints: Constraints, costs: Callable[[Arch], Mapping[str, float]],
                 *, max_tries: int = 1000) -> None:
        if not isinstance(strategy, Strategy):
            raise NasforgeError(f"strategy: expected a Strategy, got {type(strategy).__name__}")
        if not isinstance(constraints, Constraints):
            raise NasforgeError(f"constraints: expected Constraints, got {type(constraints).__name__}")
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
            raise NasforgeError(f"max_tries: must be a whole number >= 1, got {max_tries!r}")
        # no super().__init__: the wrapper draws nothing at random, so it has no RNG of its own
        self.space, self.objective = strategy.space, strategy.objective
        self.strategy, self.constraints, self.costs, self.max_tries = strategy, constraints, costs, max_tries
        self.cache: dict[str, dict[str, float]] = {}  # arch key -> its costs
        self.rejected = 0

    def ask(self) -> Arch:
        return self.ask_trial()[0]

    def ask_trial(self) -> tuple[Arch, float | None]:
        lowest: dict[str, float] = {}  # the smallest value measured of each metric, for the error
        for _ in range(self.max_tries):
            arch, fidelity = self.strategy.ask_trial()
            costs = self._costs(arch)
            broken = self.constraints.violations(costs)
            if not broken:
                return arch, fidelity
            self.rejected += 1
            self.strategy.tell(arch, Result.failed("infeasible: " + "; ".join(broken), fidelity=fidelity))
            for metric, value in costs.items():
                lowest[metric] = min(lowest.get(metric, math.inf), value)
        seen = ", ".join(f"{metric} {_shown(value)}" for metric, value in lowest.items())
        raise NasforgeError(f"constraints: {self.max_tries} candidates in a row broke them (smallest seen: {seen}); "
                            f"they look unsatisfiable in space '{self.space.name}'")

    def tell(self, arch: Arch, result: Result) -> None:
        self.strategy.tell(arch, result)

    def state_dict(self) -> dict[str, Any]:
        """The inner strategy's state, the cost cache and the rejection count (no space, no costs function)."""
        return {"strategy": self.strategy.state_dict(), "cache": {k: dict(v) for k, v in self.cache.items()},
                "rejected": self.rejected}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != {"strategy", "cache", "rejected"}:
            raise NasforgeError(f"strategy state: expected fields ['cache', 'rejected', 'strategy'] for Constrained, "
                                f"got {sorted(state)}")
        self.strategy.load_state_dict(state["strategy"])
        self.cache = {k: dict(v) for k, v in state["cache"].items()}
        self.rejected = state["rejected"]

    def _costs(self, arch: Arch) -> dict[str, float]:
        if arch.key not in self.cache:
            costs = dict(self.costs(arch))
            missing = [m for m in self.constraints.limits if m not in costs]
            if missing and not self.constraints.violations(costs):
                raise NasforgeError(f"costs: the costs function gave no {', '.join(missing)} for '{arch.key}'")
            self.cache[arch.key] = costs
        return self.cache[arch.key]


def _shown(value: float) -> str:
    """Counts with thousands separators (2,310,000), other numbers to 4 significant digits."""
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) >= 1000 else f"{value:.4g}"
