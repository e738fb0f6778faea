"""One-shot and differentiable NAS: supernets with shared weights and the methods that train them.

`create_method(name, space=..., data=..., **options)` makes a trainer (`darts`, `gdas`, `spos`, `enas`,
`proxyless`);
`fit()` trains the supernet, `proposals()` gives the strategy whose architectures are then scored with
inherited weights by `SupernetEstimator`. `nasforge.oneshot.run.run_oneshot` does all of it into a run
directory, as `nasforge search --strategy darts|gdas|spos|enas|proxyless --estimator supernet` does.
"""

from __future__ import annotations

import inspect
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.oneshot.estimator import SupernetEstimator
from nasforge.oneshot.supernet import Supernet, recalibrate_bn
from nasforge.oneshot.trainer import OneShot
from nasforge.registry import Registry

__all__ = ["METHODS", "OneShot", "Supernet", "SupernetEstimator", "create_method", "list_methods", "recalibrate_bn"]

METHODS: Registry[OneShot] = Registry("one-shot method")
METHODS.register("darts", "nasforge.oneshot.darts:Darts")
METHODS.register("gdas", "nasforge.oneshot.gdas:Gdas")
METHODS.register("spos", "nasforge.oneshot.spos:Spos")
METHODS.register("enas", "nasforge.oneshot.enas:Enas")
METHODS.register("proxyless", "nasforge.oneshot.proxyless:Proxyless")


def list_methods() -> list[str]:
    return METHODS.names()


def create_method(name: str, **options: Any) -> OneShot:
    """The one-shot trainer `name` with its keyword options (space, data, epochs, seed, ...); an unknown
    option is refused by name (the methods pass their common options on with **options)."""
    factory = METHODS.factory(name)
    allowed = [p.name for cls in factory.__mro__ if "__init__" in vars(cls)
               for p in inspect.signature(cls.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        shown = ", ".join(p for p in dict.fromkeys(allowed) if p not in ("space", "data"))
        raise NasforgeError(f"one-shot method '{name}': unknown option '{unknown[0]}' (allowed options: {shown})")
    return factory(**options)
