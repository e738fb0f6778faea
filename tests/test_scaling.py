"""Compound scaling: FLOPs grow by about (alpha * beta^2 * gamma^2)^phi in every scalable space, the
FLOPs-target search, the coefficient grid search (real training, tiny) and `nasforge scale`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from nasforge.cli import main
from nasforge.data import load_dataset
from nasforge.errors import NasforgeError
from nasforge.hardware.counting import count_flops
from nasforge.scaling import EFFICIENTNET, flops_of, grid_search, resize, scale, scale_to_flops
from nasforge.spaces import create_space

X400 = {"d": 22, "w0": 24, "wa": 24.48, "wm": 2.54, "g": 16, "b": 1, "se": 0}
FACTOR = 1.2 * 1.1**2 * 1.15**2  # 1.92 per unit of phi


@pytest.fixture(autouse=True)
def _private_torch_rng():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def ratio(space, arch, shape, phi, coefficients=EFFICIENTNET):
    before = count_flops(space.build(arch, shape, 10), shape)
    return flops_of(scale(space, arch, shape, phi, coefficients), 10) / before


@pytest.mark.parametrize("phi", [1, 2])
def test_regnet_flops_grow_by_about_two_per_phi(phi):
    space = create_space("regnet")
    # rounding of depths, widths to multiples of 8 and pixels: within 10 % of 1.92^phi (measured 1.97, 3.75)
    assert ratio(space, space.validate(X400), (3, 224, 224), phi) == pytest.approx(FACTOR**phi, rel=0.1)


@pytest.mark.parametrize("name, options", [("anynet_e", {}), ("mobilenet", {}), ("nb201", {"channels": 8, "cells_per_stage": 2}),
                                           ("darts", {"channels": 8, "cells": 5})])
def test_every_scalable_space_about_doubles(name, options):
    space = create_space(name, **options)
    arch = space.sample(np.random.default_rng(0))
    # (2, 1, 1) doubles only the depth, (1, 1.19, 1.19) grows width and resolution: 2x FLOPs each, ideally
    for coefficients in [EFFICIENTNET, (1.0, 1.19, 1.19)]:
        assert 1.5 < ratio(space, arch, (3, 32, 32), 1, coefficients) < 2.7
    assert ratio(space, arch, (3, 32, 32), -1) < 0.9  # phi < 0 shrinks (the fixed head stays)


def test_scale_values():
    space = create_space("regnet")
    scaled = scale(space, space.validate(X400), (3, 224, 224), 1)
    assert scaled.multipliers == pytest.approx((1.2, 1.1, 1.15))
    assert scaled.input_shape == (3, 258, 258)  # 224 * 1.15 = 257.6
    # d 22 * 1.2 = 26.4 -> 26; w0 24 * 1.1 = 26.4 -> 26; wa 24.48 * 1.1 * 22 / 26 = 22.79
    assert scaled.arch.value == X400 | {"d": 26, "w0": 26, "wa": 22.79, "se": 0.0}


def test_scale_to_a_flops_target():
    space = create_space("anynet_c")
    arch = space.sample(np.random.default_rng(1))
    # FLOPs jump when a feature map gains a pixel; at 64 px the steps are small enough for 15 %
    scaled = scale_to_flops(space, arch, (3, 64, 64), 10, 2e7)
    assert flops_of(scaled, 10) == pytest.approx(2e7, rel=0.15) and scaled.phi > 0


def test_grid_search_trains_each_candidate():
    data = load_dataset("digits")
    space = create_space("anynet_e", stem_stride=1)
    arch = space.validate({"stages": [{"d": 2, "w": 32, "b": 1, "g": 8}] * 4})
    rows = grid_search(space, arch, data, step=0.25, epochs=2)
    # on a grid of 0.25 only (1.25, 1, 1.25), (1.25, 1.25, 1) and (2, 1, 1) are within 0.1 of 2
    assert sorted((r["alpha"], r["beta"], r["gamma"]) for r in rows) == [(1.25, 1.0, 1.25), (1.25, 1.25, 1.0), (2.0, 1.0, 1.0)]
    assert [r["val_acc"] for r in rows] == sorted((r["val_acc"] for r in rows), reverse=True)
    base = count_flops(space.build(arch, data.input_shape, 10), data.input_shape)
    assert all(r["flops"] > 1.3 * base for r in rows)
    assert rows[0]["val_acc"] > 50  # trained for real: 10 % is chance


def test_resize_and_errors(grid_space):
    data = resize(load_dataset("digits"), (12, 10))
    assert data.input_shape == (1, 12, 10) and data.x_val.shape[0] == data.y_val.shape[0]
    with pytest.raises(NasforgeError, match="space: 'grid' cannot be scaled"):
        scale(grid_space, grid_space.sample(np.random.default_rng(0)), (1, 4, 4), 1)
    space = create_space("regnet")
    with pytest.raises(NasforgeError, match="phi: must be a finite number"):
        scale(space, space.validate(X400), (3, 32, 32), float("nan"))
    with pytest.raises(NasforgeError, match="gamma: must be a number >= 1, got 0.9"):
        scale(space, space.validate(X400), (3, 32, 32), 1, (1.2, 1.1, 0.9))


def run_cli(*args):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code


def test_cli_scale(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli("search", "--space", "regnet", "--strategy", "random", "--estimator", "train", "--epochs", "1",
                   "--budget", "1", "--out", run) == 0
    capsys.readouterr()
    assert run_cli("scale", run, "--phi", "2") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((run / "scaled.json").read_text())
    assert printed["input_shape"] == [1, 11, 11] and printed["space"] == "regnet"  # digits 8 px x 1.15^2
    assert printed["flops"] / printed["original"]["flops"] > 2
    assert create_space("regnet", **printed["space_options"]).validate(printed["arch"]).key == printed["key"]
    assert run_cli("scale", run, "--flops-target", "1e6", "--out", tmp_path / "t.json") == 0
    # digits' 8 px grow in whole pixels, so FLOPs move in big steps: closer to the target, not on it
    reached = json.loads((tmp_path / "t.json").read_text())["flops"]
    assert abs(np.log(reached / 1e6)) < 0.5 * abs(np.log(printed["original"]["flops"] / 1e6))
    capsys.readouterr()
    for args, message in [([run], "error: phi: give exactly one of --phi and --flops-target"),
                          ([tmp_path / "none", "--phi", "1"], "error: run_dir:"),
                          ([run, "--phi", "1", "--beta", "0"], "error: beta: must be a number >= 1, got 0")]:
        assert run_cli("scale", *args) == 2
        assert capsys.readouterr().err.startswith(message)


def test_grid_search_records_a_diverging_candidate_and_goes_on():
    data = load_dataset("digits")
    space = create_space("anynet_e", stem_stride=1)
    arch = space.validate({"stages": [{"d": 1, "w": 8, "b": 1, "g": 8}] * 4})
    rows = grid_search(space, arch, data, step=0.25, epochs=1, lr=1e12)  # a step this size overflows
    assert len(rows) == 3
    assert all("error" in r and math.isnan(r["val_acc"]) for r in rows), rows
