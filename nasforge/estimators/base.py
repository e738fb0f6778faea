"""How good is a candidate: the `Estimator` interface and the `Result` it returns."""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from nasforge.spaces.base import Arch

OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class Result:
    """One evaluation: metrics (accuracies in percent), cost, fidelity, status and learning curve.

    `metrics` may hold `val_acc`, `val_loss`, `test_acc`, `params`, `flops`, `latency_ms`, ...;
    selection reads validation metrics only, test metrics are reported.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    status: str = OK
    error: str | None = None
    fidelity: float | None = None
    cost_s: float = 0.0
    curve: tuple[dict[str, float], ...] = ()

    @classmethod
    def failed(cls, error: str, fidelity: float | None = None, cost_s: float = 0.0) -> "Result":
        return cls(status=FAILED, error=error, fidelity=fidelity, cost_s=cost_s)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        data = dict(data)
        data["curve"] = tuple(data.get("curve") or ())
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


class Estimator(ABC):
    """Estimates the quality of an architecture at a fidelity (e.g. epochs); `None` is the full one."""

    @abstractmethod
    def evaluate(self, arch: Arch, fidelity: float | None = None) -> Result:
        """Evaluate `arch`; may raise, the runner records the error as a failed trial."""


def finite(value: Any) -> bool:
    """True for a real, finite number (NaN and inf are not results)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
