"""Spaces made of named categorical choices — and the few lines a user needs to define one.

Every built-in space is a `ChoiceSpace`: it lists its decisions and maps decision indices to and from
an `Arch`; sampling, mutation, neighbours, one-hot encoding and size follow from that. The same
decision list is what controllers (RL) and Optuna samplers walk.

Example, a user-defined space::

    import torch.nn as nn
    from nasforge import define_space

    def build(cfg, input_shape, num_classes):
        c, h, w = input_shape
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, cfg["width"]),
                             nn.ReLU() if cfg["act"] == "relu" else nn.Tanh(),
                             nn.Linear(cfg["width"], num_classes))

    space = define_space("mlp", {"width": [32, 64, 128], "act": ["relu", "tanh"]}, build)
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.spaces.base import Arch, Encodable, Mutable, SearchSpace


@dataclass(frozen=True)
class Choice:
    """One decision: its name and the JSON-scalar options it picks from."""

    name: str
    options: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.options) == 0:
            raise NasforgeError(f"choice '{self.name}': needs at least one option")
        for option in self.options:  # anything else would not survive the Arch's JSON round trip
            scalar = type(option) in (str, int, bool, type(None)) or (type(option) is float and math.isfinite(option))
            if not scalar:
                raise NasforgeError(f"choice '{self.name}': {option!r} is not allowed (allowed: str, int, finite float, bool, None)")
        if len(set(map(repr, self.options))) != len(self.options):
            raise NasforgeError(f"choice '{self.name}': options must be distinct, got {list(self.options)}")

    def index(self, value: Any, field: str | None = None) -> int:
        """The index of `value`; an unknown value raises naming the field and the allowed values."""
        # bool == int in Python (True == 1): compare types too; an int may stand for an equal float
        # option (JSON `1` for 1.0), but an option of the value's own type wins (options 1.0 and 1 differ)
        exact = [i for i, option in enumerate(self.options) if type(option) is type(value) and option == value]
        widened = [i for i, option in enumerate(self.options) if type(option) is float and type(value) is int and option == value]
        if exact or widened:
            return (exact + widened)[0]
        allowed = ", ".join(map(str, self.options))
        raise NasforgeError(f"{field or self.name}: {value!r} is not allowed (allowed: {allowed})")


class ChoiceSpace(SearchSpace, Mutable, Encodable):
    """A space described by a fixed list of categorical decisions."""

    @property
    @abstractmethod
    def choices(self) -> tuple[Choice, ...]:
        """The decisions, in a fixed order."""

    @abstractmethod
    def decode(self, decisions: Sequence[int]) -> Arch:
        """The architecture the decision indices describe."""

    @abstractmethod
    def decisions(self, arch: Arch) -> tuple[int, ...]:
        """The decision indices of `arch` (inactive decisions, if any, at 0)."""

    @property
    def size(self) -> int:
        return math.prod(len(c.options) for c in self.choices)

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.decode([int(rng.integers(len(c.options))) for c in self.choices])

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        current = list(self.decisions(self.check(arch)))
        free = [i for i, c in enumerate(self.choices) if len(c.options) > 1]
        if not free:
            raise NasforgeError(f"space '{self.name}': has a single architecture, nothing to mutate")
        while True:
            i = free[int(rng.integers(len(free)))]
            j = int(rng.integers(len(self.choices[i].options) - 1))
            changed = current.copy()
            changed[i] = j + (j >= current[i])
            child = self.decode(changed)
            if child.key != arch.key:  # an inactive decision can leave the arch as it was
                return child

    def neighbors(self, arch: Arch) -> list[Arch]:
        current = self.decisions(self.check(arch))
        seen, found = {arch.key}, []
        for i, choice in enumerate(self.choices):
            for j in range(len(choice.options)):
                if j != current[i]:
                    child = self.decode(current[:i] + (j,) + current[i + 1 :])
                    if child.key not in seen:
                        seen.add(child.key)
                        found.append(child)
        return found

    def encode(self, arch: Arch) -> np.ndarray:
        parts = []
        for choice, d in zip(self.choices, self.decisions(self.check(arch))):
            one_hot = np.zeros(len(choice.options), dtype=np.float32)
            one_hot[d] = 1.0
            parts.append(one_hot)
        return np.concatenate(parts)


class DefinedSpace(ChoiceSpace):
    """A user's space: named choices plus a builder; its arch JSON form is `{choice: value}`."""

    def __init__(
        self,
        name: str,
        choices: Mapping[str, Sequence[Any]],
        build: Callable[[dict[str, Any], tuple[int, ...], int], nn.Module],
    ) -> None:
        if not choices:
            raise NasforgeError("choices: a space needs at least one choice")
        for key, options in choices.items():
            if not isinstance(key, str) or not key:  # names become the keys of the JSON form
                raise NasforgeError(f"choices: names must be non-empty strings, got {key!r}")
            if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):  # "relu" is no list of options
                raise NasforgeError(f"choices.{key}: expected a list of options, got {options!r}")
        self.name = name
        self._choices = tuple(Choice(k, tuple(v)) for k, v in choices.items())
        self._build = build

    @property
    def choices(self) -> tuple[Choice, ...]:
        return self._choices

    def decode(self, decisions: Sequence[int]) -> Arch:
        return Arch.of(self.name, {c.name: c.options[d] for c, d in zip(self._choices, decisions)})

    def decisions(self, arch: Arch) -> tuple[int, ...]:
        value = arch.value
        return tuple(c.index(value[c.name]) for c in self._choices)

    def validate(self, value: Any) -> Arch:
        if not isinstance(value, dict):
            raise NasforgeError(f"arch: expected an object with keys {[c.name for c in self._choices]}")
        unknown = sorted(set(value) - {c.name for c in self._choices})
        if unknown:
            raise NasforgeError(f"arch.{unknown[0]}: unknown choice (allowed: {', '.join(c.name for c in self._choices)})")
        missing = [c.name for c in self._choices if c.name not in value]
        if missing:
            raise NasforgeError(f"arch.{missing[0]}: missing")
        return self.decode([c.index(value[c.name], f"arch.{c.name}") for c in self._choices])

    def build(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return self._build(self.check(arch).value, tuple(input_shape), num_classes)


def define_space(
    name: str,
    choices: Mapping[str, Sequence[Any]],
    build: Callable[[dict[str, Any], tuple[int, ...], int], nn.Module],
) -> DefinedSpace:
    """A search space from named choices and a function `build(config, input_shape, num_classes)`."""
    return DefinedSpace(name, choices, build)
