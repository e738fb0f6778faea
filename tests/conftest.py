"""Shared fixtures: the shared data folder beside the checkout, and small spaces and tables made here."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch.nn as nn

from nasforge import define_space

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NB201_TABLE = SHARED_DATA / "nb201_cifar10.csv"


@pytest.fixture(scope="session")
def nb201_table() -> Path:
    if not NB201_TABLE.is_file():
        pytest.skip(f"{NB201_TABLE} is not there (../shared/data beside the checkout)")
    return NB201_TABLE


def _mlp(cfg: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, cfg["width"]), nn.ReLU(), nn.Linear(cfg["width"], num_classes))


@pytest.fixture
def grid_space():
    """A 4-choice space of 4 options each (256 archs); the builder is a small MLP."""
    return define_space("grid", {f"x{i}": [0, 1, 2, 3] for i in range(3)} | {"width": [8, 16, 32, 64]}, _mlp)


@pytest.fixture
def grid_table(grid_space, tmp_path) -> Path:
    """A benchmark table for `grid_space`: val_acc peaks at x0=x1=x2=3, width=64 (a smooth landscape)."""
    path = tmp_path / "grid.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "arch", "val_acc", "test_acc"])
        for index in range(grid_space.size):
            digits = [(index >> (2 * k)) & 3 for k in range(4)]
            arch = grid_space.decode(digits)
            score = 10.0 * sum(digits)
            writer.writerow([index, arch.key, score, score - 1.0])
    return path
