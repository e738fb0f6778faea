"""Name -> factory tables for the CLI and configs (timm's `list_models` / `create_model`).

Library code takes objects; only the edges (CLI, YAML) go through names.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from nasforge.errors import NasforgeError

T = TypeVar("T")


class Registry(Generic[T]):
    """A plain dict of factories, filled explicitly; duplicate names are refused."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str, factory: Callable[..., T]) -> None:
        if name in self._factories:
            raise NasforgeError(f"{self.kind}: '{name}' is already registered")
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, **kwargs: Any) -> T:
        """The object `name` stands for, built with `kwargs`; an unknown name lists the known ones."""
        if name not in self._factories:
            raise NasforgeError(f"{self.kind}: unknown name '{name}' (allowed: {', '.join(self.names())})")
        return self._factories[name](**kwargs)
