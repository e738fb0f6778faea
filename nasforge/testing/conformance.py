"""The contracts of `SearchSpace` and `Strategy` as executable checks (plain asserts with messages)."""

from __future__ import annotations

import json
import pickle
from typing import Callable

import numpy as np
import torch

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator
from nasforge.spaces.base import Arch, Encodable, Mutable, SearchSpace
from nasforge.strategies.base import Strategy


def check_space(space: SearchSpace, *, input_shape: tuple[int, ...] = (3, 16, 16), num_classes: int = 5,
                samples: int = 20) -> None:
    """Sampling is seeded, archs survive a JSON round trip, moves stay in the space, networks build and run."""
    first = [space.sample(np.random.default_rng(s)) for s in range(samples)]
    again = [space.sample(np.random.default_rng(s)) for s in range(samples)]
    assert first == again, "the same seed must give the same sample"
    assert len({a.key for a in first}) > 1, "different seeds should give different samples"
    assert space.size >= len({a.key for a in first})
    for arch in first:
        assert arch.space == space.name
        parsed = space.validate(json.loads(json.dumps(arch.value)))
        assert parsed == arch, f"JSON round trip changed {arch.key}"
        assert hash(parsed) == hash(arch)
        assert pickle.loads(pickle.dumps(arch)) == arch
    try:
        space.validate({"certainly": "not an architecture"} if not isinstance(first[0].value, dict) else "not an architecture")
    except NasforgeError as error:
        assert "\n" not in str(error), "errors must be one line"
    else:
        raise AssertionError("validate accepted a value of the wrong form")
    rng = np.random.default_rng(1)
    for arch in first[:5]:
        if isinstance(space, Mutable):
            child = space.mutate(arch, rng)
            assert child != arch and space.validate(child.value) == child, "mutate must give another arch of the space"
            neighbors = space.neighbors(arch)
            assert neighbors and arch not in neighbors and len(set(neighbors)) == len(neighbors)
            assert neighbors == space.neighbors(arch), "neighbors must come in a fixed order"
        if isinstance(space, Encodable):
            code = space.encode(arch)
            assert code.ndim == 1 and len(code) == len(space.encode(first[0])), "encodings must have one length"
    for arch in first[:2]:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = space.build(arch, input_shape, num_classes)
            x = torch.randn(2, *input_shape)
            out = model(x)
        assert out.shape == (2, num_classes), f"build gave output shape {tuple(out.shape)}"
        out.sum().backward()


def drive(strategy: Strategy, estimator: Estimator, n: int) -> list[Arch]:
    """Ask, evaluate (at the fidelity the strategy chose) and tell `n` times, as the runner does; the archs asked."""
    asked = []
    for _ in range(n):
        arch, fidelity = strategy.ask_trial()
        asked.append(arch)
        strategy.tell(arch, estimator.evaluate(arch, fidelity))
    return asked


def check_strategy(make: Callable[[int], Strategy], estimator: Estimator, *, queries: int = 30) -> None:
    """Seeded, resumable through `state_dict` (pickled), and asynchronous (asks before tells, told out of order).

    Trials are asked as the runner asks them, `ask_trial()`, and evaluated at the fidelity it chose.
    """

    def drive(strategy: Strategy, n: int) -> list[tuple[Arch, float | None]]:
        asked = []
        for _ in range(n):
            arch, fidelity = strategy.ask_trial()
            asked.append((arch, fidelity))
            strategy.tell(arch, estimator.evaluate(arch, fidelity))
        return asked

    assert drive(make(0), queries) == drive(make(0), queries), "the same seed must give the same trials"
    assert drive(make(0), queries) != drive(make(1), queries), "another seed should give other trials"
    original, copy = make(0), make(12345)
    drive(original, queries // 2)
    copy.load_state_dict(pickle.loads(pickle.dumps(original.state_dict())))
    assert drive(original, queries) == drive(copy, queries), "a restored state must continue identically"
    strategy = make(2)
    pending = [strategy.ask_trial() for _ in range(3)]
    for arch, fidelity in reversed(pending):
        strategy.tell(arch, estimator.evaluate(arch, fidelity))
    drive(strategy, 3)
