"""What every search space is: `Arch` values, the `SearchSpace` interface and its capabilities.

A strategy states what it needs of a space through a capability (`Mutable`, `Encodable`) instead of
mode flags, so a space that cannot mutate simply is not offered to evolution.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch.nn as nn

from nasforge.errors import NasforgeError


def canonical_json(value: Any) -> str:
    """Compact, key-sorted JSON text: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def json_object(value: Any, keys: Sequence[str], field: str) -> dict[str, Any]:
    """`value` if it is a JSON object with exactly `keys`; otherwise an error naming the first bad key."""
    if not isinstance(value, dict):
        raise NasforgeError(f"{field}: expected an object with keys {', '.join(keys)}, got {value!r}")
    unknown = sorted(str(k) for k in set(value) - set(keys))
    if unknown:
        raise NasforgeError(f"{field}.{unknown[0]}: unknown field (allowed: {', '.join(keys)})")
    missing = [k for k in keys if k not in value]
    if missing:
        raise NasforgeError(f"{field}.{missing[0]}: missing")
    return value


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

    def canonical_key(self, arch: Arch) -> str:
        """A key shared by the architectures that compute the same function as `arch` (by default its
        own key): strategies that evaluate each architecture once skip the equivalents of known ones."""
        return self.check(arch).key

    def check(self, arch: Arch) -> Arch:
        """`arch` itself, after making sure it belongs to this space."""
        if arch.space != self.name:
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


class PathEncodable(ABC):
    """A cell space with the path encoding of BANANAS (White, Neiswanger & Savani, 2021, "BANANAS:
    Bayesian Optimization with Neural Architectures for Neural Architecture Search"): one 0/1 feature
    per sequence of ops along an input-to-output path of the cell. Cells that compute the same
    function through different wirings (isomorphisms, dead edges) encode alike, which is what makes
    predictors trained on it more accurate than on the one-hot decisions.
    """

    @abstractmethod
    def path_encode(self, arch: Arch) -> np.ndarray:
        """A 1-D 0/1 float vector of the same length for every architecture of the space."""


def path_feature(ops: Sequence[int], num_ops: int) -> int:
    """The feature index of a path, given as op indices (0 .. num_ops - 1), among all paths of 1, 2, ...
    ops: shorter paths first, paths of one length in lexicographic order, so that the features of the
    paths of up to L ops are the first num_ops + ... + num_ops**L (the truncation of BANANAS).

    >>> path_feature([2], 4), path_feature([0, 0], 4), path_feature([1, 3], 4)
    (2, 4, 11)
    """
    offset = sum(num_ops ** length for length in range(1, len(ops)))
    return offset + sum(op * num_ops ** power for power, op in enumerate(reversed(ops)))


class HasSupernet(ABC):
    """A space with a weight-sharing supernet, for the one-shot methods of `nasforge.oneshot`."""

    @abstractmethod
    def supernet(self, input_shape: tuple[int, ...], num_classes: int, *, affine: bool = True) -> nn.Module:
        """A `nasforge.oneshot.Supernet` holding every architecture of the space, for (N, *input_shape) inputs;
        `affine=False` (the one-shot methods' `bn_affine`; a space may leave the keyword out if it does not offer
        it): its candidate ops' BatchNorms learn no scale and shift."""


class Scalable(ABC):
    """A space whose architectures can be made deeper and wider, for EfficientNet's compound scaling
    (Tan & Le, 2019): the space says what "more layers" and "more channels" mean for its archs."""

    @abstractmethod
    def scale(self, arch: Arch, depth: float, width: float) -> tuple[dict[str, Any], Arch]:
        """`arch` with about `depth` x the layers and `width` x the channels, and the keyword options of
        the space holding it (`create_space(self.name, **options)`): this space's own options when its
        JSON form can say the scaled arch, those of a deeper / wider variant of the space otherwise."""


def check_scale(depth: float, width: float) -> None:
    """Refuse scale factors that are not positive finite numbers, naming the bad one."""
    for field, value in (("depth", depth), ("width", width)):
        if type(value) not in (int, float) or not 0 < value < float("inf"):
            raise NasforgeError(f"{field}: a scale factor must be a positive number, got {value!r}")
