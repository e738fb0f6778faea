"""Performance predictors: they learn NAS-Bench-201 from more data, are seeded without touching the
global RNG, and refuse bad settings naming the field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from nasforge.errors import NasforgeError
from nasforge.estimators.predictors import GBTPredictor, GPPredictor, MLPEnsemble
from nasforge.estimators.tabular import TabularEstimator
from nasforge.spaces.base import Arch
from nasforge.spaces.nb201 import NB201Space


@pytest.fixture(scope="module")
def nb201_data(nb201_table):
    """Path encodings and val_acc of 700 random NB201 cells: 200 to train on, 500 held out."""
    table = TabularEstimator(nb201_table)
    space = NB201Space()
    keys = table.keys()
    picked = np.random.default_rng(0).choice(len(keys), 700, replace=False)
    archs = [Arch.of("nb201", keys[i]) for i in picked]
    x = np.stack([space.path_encode(a) for a in archs])
    y = np.array([table.evaluate(a).metrics["val_acc"] for a in archs])
    return x[:200], y[:200], x[200:], y[200:]


def held_out_rho(predictor, nb201_data, n: int) -> float:
    x, y, x_test, y_test = nb201_data
    mean, std = predictor.fit(x[:n], y[:n]).predict(x_test)
    assert mean.shape == std.shape == (len(x_test),) and (std >= 0).all()
    return spearmanr(mean, y_test)[0]


@pytest.mark.parametrize("make", [lambda: MLPEnsemble(seed=0), lambda: GPPredictor(seed=0), lambda: GBTPredictor(seed=0)],
                         ids=["ensemble", "gp", "gbt"])
def test_rank_correlation_on_held_out_archs_rises_with_data(nb201_data, make):
    # measured (Spearman on 500 held-out cells, 20 -> 200 training cells): ensemble 0.43 -> 0.83, GP 0.45 -> 0.77,
    # boosted trees 0.38 -> 0.84
    few, many = held_out_rho(make(), nb201_data, 20), held_out_rho(make(), nb201_data, 200)
    assert many > few + 0.2
    assert many > 0.7


def test_ensemble_is_seeded_and_leaves_the_global_rng_alone(nb201_data):
    x, y, x_test, _ = nb201_data
    before = torch.random.get_rng_state()
    first = MLPEnsemble(seed=3, steps=50).fit(x[:50], y[:50]).predict(x_test)
    assert torch.equal(before, torch.random.get_rng_state())
    again = MLPEnsemble(seed=3, steps=50).fit(x[:50], y[:50]).predict(x_test)
    other = MLPEnsemble(seed=4, steps=50).fit(x[:50], y[:50]).predict(x_test)
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], other[0])


def test_ensemble_spread_is_the_members_disagreement(nb201_data):
    x, y, x_test, _ = nb201_data
    _, bagged = MLPEnsemble(seed=0, steps=50).fit(x[:50], y[:50]).predict(x_test)
    _, plain = MLPEnsemble(seed=0, steps=50, bootstrap=False).fit(x[:50], y[:50]).predict(x_test)
    assert 0 < plain.mean() < bagged.mean()  # members on their own resamples disagree more
    _, single = MLPEnsemble(members=1, seed=0, steps=50).fit(x[:50], y[:50]).predict(x_test)
    assert (single == 0).all()


def test_refit_steps_continue_from_the_earlier_fit(nb201_data):
    x, y, x_test, _ = nb201_data
    model = MLPEnsemble(seed=0, steps=100, refit_steps=1)
    before = model.fit(x[:50], y[:50]).predict(x_test)[0]
    after = model.fit(x[:60], y[:60]).predict(x_test)[0]  # one step on from the earlier weights
    assert not np.array_equal(before, after)
    assert np.corrcoef(before, after)[0, 1] > 0.99
    fresh = MLPEnsemble(seed=1, steps=100).fit(x[:60], y[:60]).predict(x_test)[0]
    assert np.corrcoef(before, fresh)[0, 1] < 0.99  # what starting afresh would move


@pytest.mark.parametrize(("make", "field"), [
    (lambda: MLPEnsemble(members=0), "members"),
    (lambda: MLPEnsemble(hidden=(32, 0)), "hidden"),
    (lambda: MLPEnsemble(steps=2.5), "steps"),
    (lambda: MLPEnsemble(refit_steps=0), "refit_steps"),
    (lambda: MLPEnsemble(hidden=()), "hidden"),
    (lambda: MLPEnsemble(lr=0), "lr"),
    (lambda: MLPEnsemble(bootstrap="yes"), "bootstrap"),
    (lambda: GPPredictor(restarts=-1), "restarts"),
    (lambda: GBTPredictor(members=0), "members"),
    (lambda: GBTPredictor(learning_rate=0), "learning_rate"),
    (lambda: GBTPredictor(learning_rate=1.5), "learning_rate"),
    (lambda: GBTPredictor(max_iter=2.5), "max_iter"),
    (lambda: GBTPredictor(max_leaf_nodes=1), "max_leaf_nodes"),
    (lambda: GBTPredictor(min_samples_leaf=0), "min_samples_leaf"),
    (lambda: GBTPredictor(l2_regularization=-1.0), "l2_regularization"),
    (lambda: GBTPredictor(quantile_targets="yes"), "quantile_targets"),
    (lambda: GBTPredictor(seed=-1), "seed"),
    (lambda: GBTPredictor(threads=0), "threads"),
])
def test_bad_settings_name_the_field(make, field):
    with pytest.raises(NasforgeError, match=f"^{field}: "):
        make()


@pytest.mark.parametrize("predictor", [MLPEnsemble(), GPPredictor(), GBTPredictor()], ids=["ensemble", "gp", "gbt"])
def test_predict_before_fit_and_bad_shapes_are_errors(predictor):
    with pytest.raises(NasforgeError, match="fit before predict"):
        predictor.predict(np.zeros((2, 3)))
    with pytest.raises(NasforgeError):
        predictor.fit(np.zeros((3, 4)), np.zeros(2))


def test_ensemble_refuses_encodings_of_another_width():
    model = MLPEnsemble(steps=5).fit(np.eye(4), np.arange(4.0))
    with pytest.raises(NasforgeError, match="^x: expected the 4 features fitted on, got 3"):
        model.predict(np.zeros((2, 3)))


def test_boosted_trees_rank_a_known_function_of_binary_features():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (300, 12)).astype(float)
    y = x @ rng.normal(size=12) + 2 * x[:, 0] * x[:, 1] + 0.1 * rng.normal(size=300)
    for quantile_targets in (True, False):
        mean, _ = GBTPredictor(seed=0, quantile_targets=quantile_targets).fit(x[:200], y[:200]).predict(x[200:])
        assert spearmanr(mean, y[200:])[0] > 0.9  # measured 0.936 and 0.944
        assert y[:200].min() <= mean.min() and mean.max() <= y[:200].max()  # in target units, never beyond them


def test_boosted_trees_are_seeded_and_leave_the_global_rng_alone(nb201_data):
    x, y, x_test, _ = nb201_data
    before = np.random.get_state()[1].copy()
    first = GBTPredictor(seed=3, max_iter=20).fit(x[:50], y[:50]).predict(x_test)
    np.testing.assert_array_equal(before, np.random.get_state()[1])
    again = GBTPredictor(seed=3, max_iter=20).fit(x[:50], y[:50]).predict(x_test)
    other = GBTPredictor(seed=4, max_iter=20).fit(x[:50], y[:50]).predict(x_test)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_boosted_trees_spread_is_the_members_disagreement(nb201_data):
    x, y, x_test, _ = nb201_data
    model = GBTPredictor(seed=0).fit(x, y)
    _, held_out = model.predict(x_test)
    _, seen = model.predict(x)
    assert (held_out > 0).all()  # the members, on their own resamples, disagree on every unseen cell
    assert held_out.mean() > seen.mean()  # and more than on the cells they were fitted to
    _, single = GBTPredictor(members=1, seed=0).fit(x, y).predict(x_test)
    assert (single == 0).all()


def test_boosted_trees_refuse_encodings_of_another_width():
    model = GBTPredictor(max_iter=5).fit(np.eye(4), np.arange(4.0))
    with pytest.raises(NasforgeError, match=r"^x: expected \(n, 4\) encodings"):
        model.predict(np.zeros((2, 3)))
