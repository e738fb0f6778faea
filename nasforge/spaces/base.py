"""What every search space is: `Arch` values, the `SearchSpace` interface and its capabilities.

A strategy states what it needs of a space through a capability (`Mutable`, `Encodable`) instead of
mode flags, so a space that cannot mutate simply is not offered to evolution.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch.nn as nn


def canonical_json(value: Any) -> str:
    """Compact, key-sorted JSON text: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Arch:
    """One point of a search space: immutable, hashable, JSON-serialisable.

    `key` is the canonical string (dedupe, caching, resume): the value itself when the space's JSON
    form is a string (NAS-Bench-201's official arch string), its canonical JSON text otherwise.
    """

    space: str
    key: str
    json_text: str

    @classmethod
    def of(cls, space: str, value: Any) -> "Arch":
        text = canonical_json(value)
        return cls(space, value if isinstance(value, str) else text, text)

    @property
    def value(self) -> Any:
        """The space's JSON form (a fresh copy: the Arch itself never changes)."""
        return json.loads(self.json_text)

    def __str__(self) -> str:
        return self.key


class SearchSpace(ABC):
    """A set of architectures that can be sampled, checked and built into networks."""

    name: str = ""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random architecture, drawn with `rng` only."""

    @abstractmethod
    def validate(self, value: Any) -> Arch:
        """Parse the space's JSON form into an `Arch`; a bad value raises `NasforgeError` naming the field."""

    @abstractmethod
    def build(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """The network for `arch`, taking (N, *input_shape) inputs and returning (N, num_classes) logits."""

    @property
    @abstractmethod
    def size(self) -> int:
        """The number of distinct architectures."""

    def check(self, arch: Arch) -> Arch:
        """`arch` itself, after making sure it belongs to this space."""
        if arch.space != self.name:
            from nasforge.errors import NasforgeError

            raise NasforgeError(f"arch: belongs to space '{arch.space}', not '{self.name}'")
        return arch


class Mutable(ABC):
    """A space whose architectures have neighbours: local moves for evolution and local search."""

    @abstractmethod
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """A random neighbour of `arch` (never `arch` itself)."""

    @abstractmethod
    def neighbors(self, arch: Arch) -> list[Arch]:
        """Every architecture one local move away from `arch`, in a fixed order."""


class Encodable(ABC):
    """A space with a fixed-length numeric encoding, for predictors and Bayesian search."""

    @abstractmethod
    def encode(self, arch: Arch) -> np.ndarray:
        """A 1-D float vector of the same length for every architecture of the space."""
