"""What a search optimises: one metric, the MnasNet reward of accuracy and a cost, or several metrics (Pareto).

Every objective gives each result one higher-is-better `score` (what single-objective strategies and
`best.json` use) and a vector of higher-is-better `values`, one per metric it reads (what
multi-objective strategies and the Pareto front use; costs enter negated). `parse_objective` reads
the CLI / config form:

- `val_acc` (any one metric; costs and losses minimised, the rest maximised, as `direction` says);
- `mnasnet:latency_ms<=80` (soft reward) or `mnasnet-hard:latency_ms<=80` of `val_acc` and the cost;
- `pareto:val_acc,latency_ms` (two or more metrics, `direction` says which way each goes; the score is
  the first one's).

>>> parse_objective("pareto:val_acc,flops").values(Result({"val_acc": 90.0, "flops": 2e6}))
(90.0, -2000000.0)
"""

from __future__ import annotations

from dataclasses import dataclass

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result, finite
from nasforge.hardware.objectives import HARD, SOFT, mnasnet_reward

__all__ = ["COSTS", "MnasNetReward", "Objective", "Pareto", "direction", "parse_objective"]

#: hardware costs a search minimises (units: parameters, FLOPs at batch 1, milliseconds)
COSTS = ("params", "flops", "latency_ms")


def direction(metric: str) -> str:
    """'min' for costs and losses, 'max' for everything else (accuracies, scores)."""
    return "min" if metric in COSTS or metric.endswith("_loss") else "max"


@dataclass(frozen=True)
class Objective:
    """One metric to optimise; `score` is higher-is-better, `None` for failed or missing results."""

    metric: str = "val_acc"
    mode: str = "max"

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise NasforgeError(f"objective.mode: '{self.mode}' is not allowed (allowed: max, min)")
        for metric in self.names:
            if not metric or metric.startswith("test_"):
                raise NasforgeError(f"objective.metric: '{metric}' is not allowed (a validation metric or cost; "
                                    "test metrics are never selected by)")

    @property
    def names(self) -> tuple[str, ...]:
        """The metrics this objective reads."""
        return (self.metric,)

    @property
    def multi(self) -> bool:
        """Whether results are compared as vectors (Pareto) rather than by `score`."""
        return False

    def score(self, result: Result) -> float | None:
        value = result.metrics.get(self.metric)
        if not result.ok or not finite(value):
            return None
        return float(value) if self.mode == "max" else -float(value)

    def values(self, result: Result) -> tuple[float, ...] | None:
        """The higher-is-better vector of `result` (here the score alone); None when failed or incomplete."""
        score = self.score(result)
        return None if score is None else (score,)


@dataclass(frozen=True)
class MnasNetReward(Objective):
    """`metric` (accuracy) x (`cost` / `target`)^w, w = alpha at or under the target, beta over it
    (Tan et al., 2019, "MnasNet"); `hard` picks (alpha, beta) = (0, -1), else the soft (-0.07, -0.07)."""

    cost: str = "latency_ms"
    target: float = 1.0
    hard: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode != "max":
            raise NasforgeError("objective.mode: the MnasNet reward is maximised (allowed: max)")
        if not finite(self.target) or self.target <= 0:
            raise NasforgeError(f"objective.target: must be a number > 0, got {self.target!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.metric, self.cost)

    def score(self, result: Result) -> float | None:
        accuracy, cost = (result.metrics.get(m) for m in self.names)
        if not result.ok or not finite(accuracy) or not finite(cost) or cost <= 0:
            return None
        alpha, beta = HARD if self.hard else SOFT
        return mnasnet_reward(accuracy, cost, target=self.target, alpha=alpha, beta=beta)


@dataclass(frozen=True)
class Pareto(Objective):
    """Several metrics at once: `metric` (the first, whose value is the `score`) and `others`, each
    maximised or minimised by `direction`."""

    others: tuple[str, ...] = ("latency_ms",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode != direction(self.metric):
            raise NasforgeError(f"objective.mode: '{self.metric}' is {direction(self.metric)}imised in a Pareto objective")
        if not self.others or len(set(self.names)) != len(self.names):
            raise NasforgeError(f"objective: a Pareto objective needs two or more distinct metrics, got {list(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.metric, *self.others)

    @property
    def multi(self) -> bool:
        return True

    def values(self, result: Result) -> tuple[float, ...] | None:
        found = [result.metrics.get(m) for m in self.names]
        if not result.ok or not all(finite(v) for v in found):
            return None
        return tuple(float(v) if direction(m) == "max" else -float(v) for m, v in zip(self.names, found))


def parse_objective(text: str) -> Objective:
    """The objective a CLI / config string names (see the module docstring); bad text names the allowed forms."""
    forms = "METRIC, mnasnet:COST<=T, mnasnet-hard:COST<=T, pareto:METRIC,METRIC[,...]"
    if not isinstance(text, str) or not text.strip():
        raise NasforgeError(f"objective: expected one of {forms}, got {text!r}")
    kind, colon, rest = text.partition(":")
    if not colon:
        return Objective(text.strip(), direction(text.strip()))
    if kind == "pareto":
        metrics = [m.strip() for m in rest.split(",")]
        return Pareto(metrics[0], direction(metrics[0]), tuple(metrics[1:]))
    if kind in ("mnasnet", "mnasnet-hard"):
        cost, bound, target = rest.partition("<=")
        try:
            value = float(target)
        except ValueError:
            value = None
        if not bound or not cost.strip() or value is None:
            raise NasforgeError(f"objective: '{text}' must read {kind}:COST<=T, e.g. {kind}:latency_ms<=80")
        return MnasNetReward(cost=cost.strip(), target=value, hard=kind == "mnasnet-hard")
    raise NasforgeError(f"objective: unknown kind '{kind}' (allowed: {forms})")
