"""Random search: independent uniform samples — the baseline every strategy must beat (Li & Talwalkar, 2019)."""

from __future__ import annotations

from nasforge.estimators.base import Result
from nasforge.spaces.base import Arch
from nasforge.strategies.base import Strategy


class RandomSearch(Strategy):
    """Samples the space uniformly; learns nothing."""

    def ask(self) -> Arch:
        return self.space.sample(self.rng)

    def tell(self, arch: Arch, result: Result) -> None:
        pass
