"""EDFs, their area and the complexity weights on hand-made error lists."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.design.edf import complexity_weights, edf, edf_area
from nasforge.errors import NasforgeError


def test_edf_counts_errors_strictly_below():
    errors = [30.0, 10.0, 20.0, 20.0]
    assert edf(errors, [0, 10, 10.5, 20, 25, 30, 31]).tolist() == [0, 0, 0.25, 0.25, 0.75, 0.75, 1]


def test_weighted_edf():
    # weights 1, 1, 2 of errors 5, 15, 25: F(10) = 1/4, F(20) = 2/4, F(30) = 1
    assert edf([5, 15, 25], [10, 20, 30], weights=[1, 1, 2]).tolist() == [0.25, 0.5, 1.0]


def test_edf_area_by_hand():
    # over [0, 40]: F = 0 on [0, 10), 1/2 on [10, 30), 1 on [30, 40] -> (0 * 10 + 0.5 * 20 + 1 * 10) / 40 = 0.5
    assert edf_area([10, 30], 0, 40) == pytest.approx(0.5)
    # errors outside the range clip: below it counts fully, above it not at all
    assert edf_area([-5, 50], 0, 40) == pytest.approx(0.5)
    # the integral of the EDF on a fine grid agrees
    errors = np.random.default_rng(0).uniform(10, 40, 37)
    grid = np.linspace(5, 45, 400001)
    assert edf_area(errors, 5, 45) == pytest.approx(edf(errors, grid).mean(), abs=1e-4)
    # a space whose every model is better has the larger area
    assert edf_area([12, 14], 10, 20) > edf_area([13, 15], 10, 20)


def test_complexity_weights_equalise_flops_bins():
    # two bins of log FLOPs: three small models share one half, one large model takes the other half
    w = complexity_weights([1e6, 1.1e6, 1.2e6, 1e8], bins=2)
    np.testing.assert_allclose(w, [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    np.testing.assert_allclose(complexity_weights([5e6] * 3), [1 / 3] * 3)


@pytest.mark.parametrize("call, message", [
    (lambda: edf([], [1]), "errors: expected a non-empty list"),
    (lambda: edf_area([1, 2], 3, 3), "error range: expected low < high"),
    (lambda: edf([1, 2], [1], weights=[1]), "weights: expected one non-negative weight per error"),
    (lambda: complexity_weights([0, 1]), "flops: expected a non-empty list of positive numbers"),
])
def test_errors(call, message):
    with pytest.raises(NasforgeError, match=message):
        call()
