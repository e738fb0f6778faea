"""Learning-curve extrapolation: the curve fits on synthetic curves, then real training of small networks on digits."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import yaml
from torch import nn

from nasforge import NasforgeError, define_space
from nasforge.cli import main
from nasforge.data import load_dataset
from nasforge.estimators.learning_curve import (
    FAMILIES,
    LearningCurveEstimator,
    extrapolate,
    fit_curve,
)
from nasforge.estimators.training import TrainingEstimator
from nasforge.runner.config import RunConfig
from nasforge.runner.search import network_input, run_search

T = 10  # the full schedule of the real runs here


def _build(cfg: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, cfg["width"]), nn.ReLU(), nn.Linear(cfg["width"], num_classes))


@pytest.fixture(scope="module")
def space():
    """An MLP with a hidden layer of 2 (a bad candidate: about 25 % on digits) or 64 units (about 97 %)."""
    return define_space("mlp", {"width": [2, 64]}, _build)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _trainer(space, data, **options) -> TrainingEstimator:
    """One CPU thread and no latency timing: these tiny networks gain nothing from either."""
    return TrainingEstimator(**({"space": space, "data": data, "epochs": T, "threads": 1, "latency": False} | options))


def _timeless(curve):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in curve]


@pytest.mark.parametrize("family, params", [("pow3", (90.0, 60.0, 0.8)), ("exp3", (85.0, 70.0, 0.3)),
                                            ("log_power", (95.0, 1.5, 1.0))])
def test_fit_recovers_the_parameters_of_its_own_family(family, params):
    epochs = np.arange(1, 9, dtype=float)
    values = FAMILIES[family][0](epochs, *params)
    assert fit_curve(family, epochs, values) == pytest.approx(params, rel=1e-3)


@pytest.mark.parametrize("family, params", [("pow3", (90.0, 60.0, 0.8)), ("pow3", (98.0, 40.0, 1.5)),
                                            ("exp3", (85.0, 70.0, 0.3)), ("log_power", (95.0, 1.5, 1.0))])
def test_extrapolation_from_five_epochs_beats_the_observed_value(family, params):
    # a curve of each family seen for 5 of 30 epochs: the prediction is nearer the truth at epoch 30 than
    # the best observed value (what it returns when every fit fails), and never below it
    epochs = np.arange(1, 31, dtype=float)
    curve = FAMILIES[family][0](epochs, *params)
    prediction = extrapolate(curve[:5], 30)
    assert curve[4] <= prediction <= 100.0
    assert abs(prediction - curve[-1]) < 0.6 * abs(curve[4] - curve[-1])


def test_prediction_stays_within_the_best_observed_and_100():
    assert extrapolate([50.0, 40.0, 30.0, 20.0], 50) == pytest.approx(50.0)  # a falling curve: the best observed stays the best
    assert extrapolate([10.0, 90.0, 99.0, 99.9], 50) <= 100.0
    assert isinstance(extrapolate([60.0, 70.0, 75.0], 10), float)


def test_a_failed_fit_gives_none():
    assert fit_curve("pow3", [1.0, 2.0, 3.0], [50.0, math.nan, 60.0]) is None
    assert extrapolate([50.0, math.nan, 60.0], 10) is None


def test_extrapolates_a_real_run_from_its_first_epochs(space, digits):
    arch = space.validate({"width": 64})
    full = _trainer(space, digits).evaluate(arch)  # the run the prediction stands for
    result = LearningCurveEstimator(_trainer(space, digits), min_epochs=4).evaluate(arch)
    m = result.metrics
    # the 4 epochs run are the exact prefix of the 10-epoch run (same seed, same cosine schedule over 10 epochs)
    assert _timeless(result.curve) == _timeless(full.curve[:4])
    assert (m["epochs"], m["predicted_epochs"], m["extrapolated"], m["fit_failed"], result.fidelity) == (4, T, 1.0, 0.0, 4.0)
    observed = max(row["val_acc"] for row in full.curve[:4])
    assert m["val_acc_observed"] == observed
    # measured: observed best 96.4 %, prediction 97.8 %, real final 97.2 %: above what was seen, near the end
    assert observed < m["val_acc"] <= 100.0 and abs(m["val_acc"] - full.metrics["val_acc"]) < 1.5
    # every other metric is that of the epochs trained (test ones of their best-validation weights), never extrapolated
    trained = _trainer(space, digits).train(arch, 4, schedule_epochs=T).metrics
    assert {k: m[k] for k in trained if k != "val_acc"} == {k: v for k, v in trained.items() if k != "val_acc"}


def test_stop_below_stops_a_bad_candidate_early_and_lets_a_good_one_run(space, digits):
    estimator = LearningCurveEstimator(_trainer(space, digits), min_epochs=3, stop_below=80.0)
    bad = estimator.evaluate(space.validate({"width": 2}))
    assert bad.metrics["extrapolated"] == 1.0 and bad.metrics["epochs"] == 3 < T and len(bad.curve) == 3
    assert bad.metrics["val_acc_observed"] <= bad.metrics["val_acc"] < 80.0 and bad.fidelity == T
    good_arch = space.validate({"width": 64})
    good = estimator.evaluate(good_arch)
    real = _trainer(space, digits).evaluate(good_arch)  # a survivor reports exactly the real full run
    assert good.metrics["extrapolated"] == 0.0 and good.metrics["epochs"] == T
    assert {k: good.metrics[k] for k in real.metrics} == real.metrics
    assert good.metrics["val_acc_observed"] == real.metrics["val_acc"]
    # a margin keeps more candidates running: the bad one, predicted well above 80 - 70, is kept until epoch T
    lenient = LearningCurveEstimator(_trainer(space, digits), min_epochs=3, stop_below=80.0, margin=70.0)
    assert lenient.evaluate(space.validate({"width": 2})).metrics["extrapolated"] == 0.0


def test_fidelity_sets_the_epochs_seen_and_runs_are_deterministic(space, digits):
    arch = space.validate({"width": 64})
    estimator = LearningCurveEstimator(_trainer(space, digits, seed=3), min_epochs=3)
    five, again = estimator.evaluate(arch, 5), estimator.evaluate(arch, 5.0)
    assert (five.metrics["epochs"], five.fidelity) == (5, 5.0)
    assert (five.metrics, _timeless(five.curve)) == (again.metrics, _timeless(again.curve))
    assert estimator.evaluate(arch, T).metrics["extrapolated"] == 0.0  # all T epochs: a real result
    other = LearningCurveEstimator(_trainer(space, digits, seed=4), min_epochs=3).evaluate(arch, 5)
    assert _timeless(other.curve) != _timeless(five.curve)
    for bad in (2, T + 1, 2.5):
        with pytest.raises(NasforgeError, match=r"^fidelity: epochs must be"):
            estimator.evaluate(arch, bad)


@pytest.mark.parametrize("options, message", [
    ({"min_epochs": 2}, r"^min_epochs: must be a whole number in \[3, epochs = 10\]"),
    ({"min_epochs": 11}, r"^min_epochs: must be a whole number in \[3, epochs = 10\]"),
    ({"min_epochs": True}, r"^min_epochs: "),
    ({"stop_below": 101}, r"^stop_below: must be null or an accuracy in \[0, 100\]"),
    ({"stop_below": math.nan}, r"^stop_below: "),
    ({"stop_below": "80"}, r"^stop_below: "),
    ({"margin": -1.0}, r"^margin: must be a finite number >= 0"),
])
def test_bad_options_name_the_field(space, digits, options, message):
    with pytest.raises(NasforgeError, match=message):
        LearningCurveEstimator(_trainer(space, digits), **options)


def test_the_trainer_must_be_a_training_estimator_without_patience(space, digits):
    with pytest.raises(NasforgeError, match=r"^trainer: expected a TrainingEstimator, got str"):
        LearningCurveEstimator("train")
    with pytest.raises(NasforgeError, match=r"^patience: must be null with learning-curve extrapolation"):
        LearningCurveEstimator(_trainer(space, digits, patience=2))


def test_search_with_the_learning_curve_estimator(tmp_path):
    # through the CLI and a YAML config: the trials report predictions from 3 of 4 epochs
    config = tmp_path / "lc.yaml"
    config.write_text(yaml.safe_dump({
        "space": "nb201", "space_options": {"channels": 4, "cells_per_stage": 1}, "strategy": "random",
        "estimator": "learning_curve", "estimator_options": {"min_epochs": 3, "threads": 1, "latency": False},
        "epochs": 4, "budget": 2, "out": str(tmp_path / "run")}))
    with pytest.raises(SystemExit) as exited:
        main(["search", "--config", str(config)])
    assert exited.value.code == 0
    with (tmp_path / "run" / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(row["status"] == "ok" for row in rows)
    assert all((row["epochs"], row["predicted_epochs"], row["extrapolated"]) == ("3", "4.0", "1.0") for row in rows)
    assert all(float(row["val_acc"]) >= float(row["val_acc_observed"]) for row in rows)
    assert "latency_ms" not in rows[0]  # the training options reached the trainer


def test_unknown_config_option_is_named_and_the_network_input_is_the_data(space, digits, tmp_path):
    config = RunConfig(out=str(tmp_path / "run"), estimator="learning_curve", estimator_options={"foo": 1}, budget=1)
    with pytest.raises(NasforgeError, match=r"^estimator 'learning_curve': unknown option 'foo' \(allowed options: min_epochs, "):
        run_search(config)
    assert network_input(LearningCurveEstimator(_trainer(space, digits))) == ((1, 8, 8), 10)
