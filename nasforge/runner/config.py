"""A run's configuration: one frozen dataclass, from CLI flags or a YAML file, validated at the edge."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nasforge.errors import NasforgeError
from nasforge.runner.executors import EXECUTORS
from nasforge.strategies.constrained import Constraints


@dataclass(frozen=True)
class RunConfig:
    """Everything a search needs; `*_options` are keyword arguments of the named component."""

    out: str
    space: str = "nb201"
    space_options: dict[str, Any] = field(default_factory=dict)
    strategy: str = "evolution"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    estimator: str = "train"
    estimator_options: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    table: str | None = None
    objective: str = "val_acc"
    constraints: dict[str, Any] = field(default_factory=dict)  # max_params, max_flops, max_latency_ms
    latency_table: str | None = None   # a lookup table (nasforge latency-table) predicting latency_ms
    budget: int | None = 20            # trials (a failed trial counts)
    max_seconds: float | None = None   # wall-clock budget of one invocation
    epochs: int | None = None          # fidelity of the training estimator; None = its default
    seed: int = 0
    workers: int = 1
    executor: str = "inline"
    trial_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.budget is not None and (isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 0):
            raise NasforgeError(f"budget: must be a whole number >= 0, got {self.budget!r}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise NasforgeError(f"max_seconds: must be > 0, got {self.max_seconds!r}")
        if self.budget is None and self.max_seconds is None:
            raise NasforgeError("budget: give a number of trials (budget), seconds (max_seconds), or both")
        if self.epochs is not None and self.epochs < 1:
            raise NasforgeError(f"epochs: must be >= 1, got {self.epochs!r}")
        if self.workers < 1:
            raise NasforgeError(f"workers: must be >= 1, got {self.workers!r}")
        if self.executor not in EXECUTORS:
            raise NasforgeError(f"executor: unknown name '{self.executor}' (allowed: {', '.join(EXECUTORS)})")
        if self.executor == "inline" and self.workers != 1:
            raise NasforgeError(f"workers: the inline executor runs one trial at a time, got {self.workers} (use executor processes)")
        if self.trial_timeout is not None and self.trial_timeout <= 0:
            raise NasforgeError(f"trial_timeout: must be > 0 seconds, got {self.trial_timeout!r}")
        for name in ("space_options", "strategy_options", "estimator_options"):
            if not isinstance(getattr(self, name), dict):
                raise NasforgeError(f"{name}: must be a mapping of option names to values")
        Constraints.from_mapping(self.constraints)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> "RunConfig":
        """A config from a plain mapping (YAML), refusing unknown fields by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise NasforgeError(f"config: unknown field '{unknown[0]}' (allowed: {', '.join(sorted(known))})")
        if "out" not in values:
            raise NasforgeError("out: the run directory is required")
        try:
            return cls(**values)
        except TypeError as error:
            raise NasforgeError(f"config: {error}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "RunConfig":
        """A config from a YAML file; `overrides` (non-None) win over the file's fields, key by key for mappings."""
        path = Path(path)
        if not path.is_file():
            raise NasforgeError(f"config: no such file '{path}'")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise NasforgeError(f"config: {path} is not valid YAML ({str(error).splitlines()[0]})") from None
        if not isinstance(values, dict):
            raise NasforgeError(f"config: {path} must hold a mapping of fields")
        for name, value in overrides.items():
            if isinstance(value, dict) and isinstance(values.get(name), dict):
                value = {**values[name], **value}  # e.g. --max-params replaces one limit, not all of them
            if value is not None:
                values[name] = value
        return cls.from_mapping(values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
