"""ChoiceSpace machinery through `define_space`: the module's own example, moves, encoding, size, errors."""

from __future__ import annotations

import itertools
import json
import textwrap
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.spaces import choices as choices_module
from nasforge.spaces.base import Arch
from nasforge.spaces.choices import Choice, DefinedSpace, define_space


def mlp(cfg: dict, input_shape: tuple, num_classes: int) -> nn.Module:
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, cfg["width"]), nn.ReLU(), nn.Linear(cfg["width"], num_classes))


OPTIONS = {"width": [16, 32, 64], "act": ["relu", "tanh"], "dropout": [0.0, 0.5], "bn": [False, True]}


@pytest.fixture
def space() -> DefinedSpace:
    return define_space("mlp", OPTIONS, mlp)


def every_arch(space: DefinedSpace) -> list[Arch]:
    return [space.decode(d) for d in itertools.product(*(range(len(c.options)) for c in space.choices))]


@pytest.fixture(autouse=True)
def _private_torch_rng():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def test_module_docstring_example_runs() -> None:
    code = textwrap.dedent(choices_module.__doc__.split("::", 1)[1])
    namespace: dict = {}
    exec(code, namespace)  # the example exactly as the documentation shows it
    space = namespace["space"]
    assert space.name == "mlp" and space.size == 6
    for arch in every_arch(space):
        model = space.build(arch, (1, 8, 8), 10)
        assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)
        assert model[1].out_features == arch.value["width"]
        assert isinstance(model[2], nn.ReLU if arch.value["act"] == "relu" else nn.Tanh)


def test_size_is_the_product_of_option_counts(space: DefinedSpace) -> None:
    archs = every_arch(space)
    assert space.size == 3 * 2 * 2 * 2 == len(set(archs))


def test_arch_json_form(space: DefinedSpace) -> None:
    arch = space.validate({"bn": True, "dropout": 0.5, "act": "tanh", "width": 32})
    assert arch.value == {"width": 32, "act": "tanh", "dropout": 0.5, "bn": True}
    assert arch.key == '{"act":"tanh","bn":true,"dropout":0.5,"width":32}'  # canonical: sorted keys
    assert space.decisions(arch) == (1, 1, 1, 1)
    for a in every_arch(space):
        assert space.validate(json.loads(json.dumps(a.value))) == a


def test_sample_reproducible_and_uniform(space: DefinedSpace) -> None:
    def draw(seed: int, n: int) -> list[Arch]:
        rng = np.random.default_rng(seed)
        return [space.sample(rng) for _ in range(n)]

    assert draw(0, 20) == draw(0, 20)
    assert draw(0, 20) != draw(1, 20)
    counts = Counter(draw(2, 2400))
    chi2 = sum((counts[a] - 100) ** 2 / 100 for a in every_arch(space))
    assert chi2 < 49.7  # the 0.999 quantile of chi-square with 23 degrees of freedom


def test_mutate_moves_exactly_one_choice(space: DefinedSpace) -> None:
    rng = np.random.default_rng(3)
    moved = Counter()
    for _ in range(400):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        changed = [k for k in OPTIONS if child.value[k] != arch.value[k]]
        assert len(changed) == 1
        moved[changed[0]] += 1
    assert set(moved) == set(OPTIONS)  # every choice gets mutated, none is stuck


def test_mutate_skips_single_option_choices() -> None:
    space = define_space("s", {"fixed": ["a"], "free": [1, 2]}, mlp)
    arch = space.validate({"fixed": "a", "free": 1})
    assert space.mutate(arch, np.random.default_rng(0)).value == {"fixed": "a", "free": 2}


def test_mutate_single_architecture_space() -> None:
    space = define_space("one", {"width": [8]}, mlp)
    with pytest.raises(NasforgeError, match="space 'one': has a single architecture, nothing to mutate"):
        space.mutate(space.sample(np.random.default_rng(0)), np.random.default_rng(0))
    assert space.neighbors(space.sample(np.random.default_rng(0))) == []


def test_neighbors(space: DefinedSpace) -> None:
    arch = space.validate({"width": 32, "act": "relu", "dropout": 0.0, "bn": False})
    found = space.neighbors(arch)
    assert [a.value for a in found[:2]] == [  # in choice order, then option order
        {"width": 16, "act": "relu", "dropout": 0.0, "bn": False},
        {"width": 64, "act": "relu", "dropout": 0.0, "bn": False},
    ]
    assert len(found) == len(set(found)) == (3 - 1) + (2 - 1) + (2 - 1) + (2 - 1)
    for other in found:
        assert sum(other.value[k] != arch.value[k] for k in OPTIONS) == 1


def test_encode(space: DefinedSpace) -> None:
    archs = every_arch(space)
    vectors = np.stack([space.encode(a) for a in archs])
    assert vectors.shape == (24, 3 + 2 + 2 + 2) and vectors.dtype == np.float32
    assert (vectors.sum(axis=1) == 4).all()  # one hot per choice
    assert len({v.tobytes() for v in vectors}) == 24
    np.testing.assert_array_equal(space.encode(space.validate({"width": 64, "act": "relu", "dropout": 0.5, "bn": False})),
                                  [0, 0, 1, 1, 0, 0, 1, 1, 0])


@pytest.mark.parametrize(
    "value, message",
    [
        ([16, "relu"], "arch: expected an object with keys ['width', 'act', 'dropout', 'bn']"),
        ({"width": 16, "act": "relu", "dropout": 0.0, "bn": False, "depth": 2},
         "arch.depth: unknown choice (allowed: width, act, dropout, bn)"),
        ({"width": 16, "act": "relu", "bn": False}, "arch.dropout: missing"),
        ({"width": 48, "act": "relu", "dropout": 0.0, "bn": False}, "arch.width: 48 is not allowed (allowed: 16, 32, 64)"),
        ({"width": 16, "act": "gelu", "dropout": 0.0, "bn": False}, "arch.act: 'gelu' is not allowed (allowed: relu, tanh)"),
        ({"width": 16, "act": "relu", "dropout": 0.0, "bn": 1}, "arch.bn: 1 is not allowed (allowed: False, True)"),
        ({"width": 16.0, "act": "relu", "dropout": 0.0, "bn": False}, "arch.width: 16.0 is not allowed (allowed: 16, 32, 64)"),
    ],
)
def test_validate_errors(space: DefinedSpace, value, message: str) -> None:
    with pytest.raises(NasforgeError) as error:
        space.validate(value)
    assert str(error.value) == message


def test_arch_of_another_space_is_refused(space: DefinedSpace) -> None:
    other = define_space("other", OPTIONS, mlp).sample(np.random.default_rng(0))
    for use in (lambda: space.mutate(other, np.random.default_rng(0)), lambda: space.neighbors(other),
                lambda: space.encode(other), lambda: space.build(other, (1, 8, 8), 10)):
        with pytest.raises(NasforgeError, match="arch: belongs to space 'other', not 'mlp'"):
            use()


def test_bool_and_int_options_stay_apart() -> None:
    # True == 1 in Python, yet false/0/true/1 are four different JSON values and four architectures
    space = define_space("flags", {"x": [False, True, 0, 1]}, mlp)
    archs = every_arch(space)
    assert [a.key for a in archs] == ['{"x":false}', '{"x":true}', '{"x":0}', '{"x":1}']
    assert [space.decisions(a) for a in archs] == [(0,), (1,), (2,), (3,)]
    assert [space.encode(a).argmax() for a in archs] == [0, 1, 2, 3]
    with pytest.raises(NasforgeError, match=r"x: True is not allowed \(allowed: 0, 1\)"):
        Choice("x", (0, 1)).index(True)
    with pytest.raises(NasforgeError, match=r"x: 0 is not allowed \(allowed: False, True\)"):
        Choice("x", (False, True)).index(0)


def test_int_stands_for_float_but_not_the_reverse() -> None:
    assert Choice("lr", (0.5, 1.0)).index(1) == 1  # JSON may write 1.0 as 1
    with pytest.raises(NasforgeError, match=r"n: 1.0 is not allowed \(allowed: 1, 2\)"):
        Choice("n", (1, 2)).index(1.0)
    space = define_space("s", {"scale": [0.5, 1.0]}, mlp)
    assert space.validate({"scale": 1}).key == '{"scale":1.0}'


def test_equal_int_and_float_options_round_trip() -> None:
    # 1.0 and 1 are distinct options (different JSON): each must map back to its own index
    choice = Choice("x", (1.0, 1))
    assert (choice.index(1.0), choice.index(1)) == (0, 1)
    space = define_space("s", {"x": [1.0, 1]}, mlp)
    assert [space.decisions(a) for a in every_arch(space)] == [(0,), (1,)]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Choice("k", ()), "choice 'k': needs at least one option"),
        (lambda: Choice("k", (3, 5, 3)), "choice 'k': options must be distinct, got [3, 5, 3]"),
        (lambda: Choice("k", ((3, 3), (5, 5))), "choice 'k': (3, 3) is not allowed (allowed: str, int, finite float, bool"),
        (lambda: Choice("lr", (0.1, float("nan"))), "choice 'lr': nan is not allowed"),
        (lambda: Choice("w", (np.int64(8),)), "is not allowed (allowed: str, int, finite float, bool, None)"),
        (lambda: define_space("s", {}, mlp), "choices: a space needs at least one choice"),
        (lambda: define_space("s", {1: [2, 3]}, mlp), "choices: names must be non-empty strings, got 1"),
        (lambda: define_space("s", {"act": "relu"}, mlp), "choices.act: expected a list of options, got 'relu'"),
    ],
)
def test_bad_definitions(make, message: str) -> None:
    with pytest.raises(NasforgeError) as error:
        make()
    assert message in str(error.value)


def test_build_receives_the_config(space: DefinedSpace) -> None:
    seen = []

    def build(cfg: dict, input_shape: tuple, num_classes: int) -> nn.Module:
        seen.append((cfg, input_shape, num_classes))
        return mlp(cfg, input_shape, num_classes)

    custom = define_space("mlp", OPTIONS, build)
    arch = custom.validate({"width": 64, "act": "tanh", "dropout": 0.5, "bn": True})
    model = custom.build(arch, [3, 4, 4], 5)
    assert seen == [({"width": 64, "act": "tanh", "dropout": 0.5, "bn": True}, (3, 4, 4), 5)]
    assert model(torch.randn(2, 3, 4, 4)).shape == (2, 5)
