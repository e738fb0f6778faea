"""Search spaces: what can be built. `create_space(name, **options)` for the CLI and configs."""

from __future__ import annotations

from typing import Any

from nasforge.registry import Registry
from nasforge.spaces.base import Arch, Encodable, Mutable, SearchSpace
from nasforge.spaces.choices import Choice, ChoiceSpace, define_space

__all__ = ["Arch", "Choice", "ChoiceSpace", "Encodable", "Mutable", "SearchSpace", "create_space", "define_space", "list_spaces"]

SPACES: Registry[SearchSpace] = Registry("space")


SPACES.register("nb201", "nasforge.spaces.nb201:NB201Space")
SPACES.register("darts", "nasforge.spaces.darts:DartsSpace")
SPACES.register("mobilenet", "nasforge.spaces.mobilenet:MobileNetSpace")
SPACES.register("regnet", "nasforge.spaces.regnet:RegNetSpace")
for _level in "abcde":  # AnyNetX-A ... -E: each a constraint on the previous one
    SPACES.register(f"anynet_{_level}", f"nasforge.spaces.anynet:AnyNetX{_level.upper()}")


def list_spaces() -> list[str]:
    return SPACES.names()


def create_space(name: str, **options: Any) -> SearchSpace:
    """The built-in space `name` with its keyword options (e.g. `channels=16`)."""
    return SPACES.create(name, **options)
