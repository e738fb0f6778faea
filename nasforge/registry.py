"""Name -> factory tables for the CLI and configs (timm's `list_models` / `create_model`).

Library code takes objects; only the edges (CLI, YAML) go through names. A factory may be given as
"module:attribute" text, imported on first use, so listing names costs no imports.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Generic, TypeVar

from nasforge.errors import NasforgeError

T = TypeVar("T")


class Registry(Generic[T]):
    """A plain dict of factories, filled explicitly; duplicate names are refused."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T] | str] = {}

    def register(self, name: str, factory: Callable[..., T] | str) -> None:
        if name in self._factories:
            raise NasforgeError(f"{self.kind}: '{name}' is already registered")
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered as `name`; an unknown name lists the known ones."""
        if name not in self._factories:
            raise NasforgeError(f"{self.kind}: unknown name '{name}' (allowed: {', '.join(self.names())})")
        factory = self._factories[name]
        if isinstance(factory, str):
            module, _, attribute = factory.partition(":")
            factory = self._factories[name] = getattr(importlib.import_module(module), attribute)
        return factory

    def create(self, name: str, **kwargs: Any) -> T:
        """The object `name` stands for, built with `kwargs`; unknown options are named in the error."""
        factory = self.factory(name)
        try:
            inspect.signature(factory).bind(**kwargs)
        except TypeError as error:
            allowed = [p for p in inspect.signature(factory).parameters if p not in ("self", "space", "objective", "seed")]
            raise NasforgeError(f"{self.kind} '{name}': {error} (allowed options: {', '.join(allowed)})") from None
        return factory(**kwargs)
