"""EfficientNet's compound scaling (Tan & Le, 2019, "EfficientNet: Rethinking Model Scaling for
Convolutional Neural Networks"): grow depth, width and input resolution together,

    depth x alpha^phi,  width x beta^phi,  resolution x gamma^phi,  with alpha * beta^2 * gamma^2 ~ 2,

so each step of phi about doubles the FLOPs (FLOPs grow with depth, width^2 and resolution^2).
Any `Scalable` space says what deeper and wider mean for its archs; the resolution scales the
input shape. `grid_search` picks (alpha, beta, gamma) by training the phi = 1 models, as the paper
did for B0; `scale_to_flops` finds the phi that meets a FLOPs budget.

Example::

    scaled = scale(space, arch, (3, 32, 32), phi=2)            # EfficientNet's 1.2, 1.1, 1.15
    model = create_space(space.name, **scaled.options).build(scaled.arch, scaled.input_shape, 10)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F

from nasforge.data.datasets import Dataset
from nasforge.errors import NasforgeError
from nasforge.hardware.counting import count_flops
from nasforge.spaces.base import Arch, Scalable, SearchSpace

__all__ = ["EFFICIENTNET", "Scaled", "grid_search", "resize", "scale", "scale_to_flops"]

#: EfficientNet-B0's (alpha, beta, gamma): 1.2 * 1.1^2 * 1.15^2 = 1.92
EFFICIENTNET = (1.2, 1.1, 1.15)


@dataclass(frozen=True)
class Scaled:
    """A scaled architecture: the options of the space holding it, the arch, its input shape, and
    the phi and (depth, width, resolution) multipliers that made it."""

    space: str
    options: dict[str, Any]
    arch: Arch
    input_shape: tuple[int, int, int]
    phi: float
    multipliers: tuple[float, float, float]

    def build(self, num_classes: int) -> Any:
        from nasforge.spaces import create_space

        return create_space(self.space, **self.options).build(self.arch, self.input_shape, num_classes)


def _coefficients(alpha: float, beta: float, gamma: float) -> None:
    for field, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if type(value) not in (int, float) or not 1 <= value < math.inf:
            raise NasforgeError(f"{field}: must be a number >= 1, got {value!r}")


def scale(space: SearchSpace, arch: Arch, input_shape: tuple[int, ...], phi: float,
          coefficients: tuple[float, float, float] = EFFICIENTNET) -> Scaled:
    """`arch` scaled by alpha^phi, beta^phi, gamma^phi (depth, width, resolution; phi may be negative
    or fractional); the resolution is rounded to whole pixels, at least 1."""
    if not isinstance(space, Scalable):
        raise NasforgeError(f"space: '{space.name}' cannot be scaled (it has no depth/width rule)")
    if type(phi) not in (int, float) or not math.isfinite(phi):
        raise NasforgeError(f"phi: must be a finite number, got {phi!r}")
    _coefficients(*coefficients)
    if len(input_shape) != 3:
        raise NasforgeError(f"input_shape: expected (C, H, W), got {tuple(input_shape)!r}")
    d, w, r = (c ** phi for c in coefficients)
    options, scaled = space.scale(arch, d, w)
    c, h, wd = input_shape
    shape = (int(c), max(1, round(h * r)), max(1, round(wd * r)))
    return Scaled(space.name, options, scaled, shape, float(phi), (d, w, r))


def flops_of(scaled: Scaled, num_classes: int) -> int:
    """nasforge's FLOPs (batch 1) of the scaled network."""
    return count_flops(scaled.build(num_classes), scaled.input_shape)


def scale_to_flops(space: SearchSpace, arch: Arch, input_shape: tuple[int, ...], num_classes: int, target: float,
                   coefficients: tuple[float, float, float] = EFFICIENTNET, *, steps: int = 30) -> Scaled:
    """The scaled arch whose FLOPs come closest to `target` (nasforge's count), by bisection on phi in
    [-8, 8]: FLOPs rise with phi, in steps since depths and widths are rounded."""
    if type(target) not in (int, float) or not 0 < target < math.inf:
        raise NasforgeError(f"flops_target: must be a positive number, got {target!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise NasforgeError(f"steps: must be a whole number >= 1, got {steps!r}")
    low, high = -8.0, 8.0
    best: tuple[float, Scaled] | None = None
    for _ in range(steps):
        phi = (low + high) / 2
        candidate = scale(space, arch, input_shape, phi, coefficients)
        flops = flops_of(candidate, num_classes)
        if best is None or abs(math.log(flops / target)) < best[0]:
            best = (abs(math.log(flops / target)), candidate)
        low, high = (phi, high) if flops < target else (low, phi)
    return best[1]


def resize(data: Dataset, size: tuple[int, int]) -> Dataset:
    """`data` with every image resized (bilinear) to `size` = (H, W): the input of a resolution-scaled model."""
    def to(x: Any) -> Any:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False) if tuple(x.shape[2:]) != size else x

    return Dataset(data.name, to(data.x_train), data.y_train, to(data.x_val), data.y_val, to(data.x_test),
                   data.y_test, data.num_classes)


def grid_search(space: SearchSpace, arch: Arch, data: Dataset, *, step: float = 0.1, tolerance: float = 0.1,
                epochs: int = 3, seed: int = 0, **training: Any) -> list[dict[str, Any]]:
    """EfficientNet's step 2: every (alpha, beta, gamma) on a grid of `step` from 1 with
    |alpha * beta^2 * gamma^2 - 2| <= `tolerance`, each scored by training the phi = 1 model on `data`
    (resized to its resolution) with the `TrainingEstimator` for `epochs`; best validation accuracy first,
    a candidate whose training fails last with its `error` (and NaN metrics).
    `training` passes further estimator options (batch_size, lr, threads, ...)."""
    from nasforge.estimators.training import TrainingEstimator
    from nasforge.spaces import create_space

    if not 0 < step <= 1 or not 0 <= tolerance < 1:
        raise NasforgeError(f"step, tolerance: expected 0 < step <= 1 and 0 <= tolerance < 1, got {step}, {tolerance}")
    values = [round(1 + i * step, 6) for i in range(int(1 / step) + 1)]  # 1 .. 2
    grid = [(a, b, g) for a, b, g in itertools.product(values, repeat=3) if abs(a * b * b * g * g - 2) <= tolerance]
    if not grid:
        raise NasforgeError(f"step: no (alpha, beta, gamma) on a grid of {step} is within {tolerance} of alpha*beta^2*gamma^2 = 2")
    rows = []
    for coefficients in grid:
        scaled = scale(space, arch, data.input_shape, 1.0, coefficients)
        estimator = TrainingEstimator(space=create_space(scaled.space, **scaled.options),
                                      data=resize(data, scaled.input_shape[1:]), epochs=epochs, seed=seed,
                                      latency=False, **training)
        row: dict[str, Any] = {"alpha": coefficients[0], "beta": coefficients[1], "gamma": coefficients[2]}
        try:
            metrics = estimator.evaluate(scaled.arch).metrics
        except (FloatingPointError, NasforgeError, RuntimeError) as error:  # recorded; the grid goes on
            rows.append({**row, "val_acc": math.nan, "flops": math.nan,
                         "error": f"{type(error).__name__}: {error}".splitlines()[0]})
            continue
        rows.append({**row, "val_acc": metrics["val_acc"], "flops": metrics["flops"]})
    return sorted(rows, key=lambda row: -row["val_acc"] if math.isfinite(row["val_acc"]) else math.inf)
