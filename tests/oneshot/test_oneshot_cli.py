"""One-shot searches from the command line: `nasforge search --strategy spos --estimator supernet` writes
the standard run directory, `nasforge show` and `nasforge retrain` read it, and bad input is one line."""

from __future__ import annotations

import csv
import json

import pytest

from nasforge.cli import main
from nasforge.errors import NasforgeError

CONFIG = """
space: nb201
space_options: {channels: 4, cells_per_stage: 1}
strategy: spos
strategy_options: {batch_size: 128, population_size: 3, sample_size: 2}
estimator: supernet
estimator_options: {calibration_images: 128}
dataset: digits
epochs: 2
budget: 5
seed: 0
"""


def run_cli(*args) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("oneshot")
    (root / "run.yaml").write_text(CONFIG)
    assert run_cli("search", "--config", root / "run.yaml", "--out", root / "run") == 0
    return root / "run"


def test_a_one_shot_search_writes_the_standard_run_directory(run_dir, capsys):
    rows = list(csv.DictReader((run_dir / "trials.csv").open()))
    assert len(rows) == 5 and all(r["status"] == "ok" for r in rows)  # 5 evolution candidates, inherited weights
    best = json.loads((run_dir / "best.json").read_text())
    assert best["key"] == best["arch"] and best["metrics"]["val_acc"] == max(float(r["val_acc"]) for r in rows)
    log = [json.loads(line) for line in (run_dir / "supernet_log.jsonl").open()]
    assert [row["epoch"] for row in log] == [1, 2] and all(row["train_loss"] > 0 for row in log)
    assert (run_dir / "supernet.pt").is_file()
    assert run_cli("show", run_dir) == 0
    assert "spos / supernet" in capsys.readouterr().out


def test_retrain_trains_the_best_architecture_from_scratch_into_the_run_directory(run_dir, capsys):
    assert run_cli("retrain", run_dir, "--epochs", "1", "--space-option", "channels=8") == 0
    record = json.loads((run_dir / "retrain.json").read_text())
    best = json.loads((run_dir / "best.json").read_text())
    assert record["key"] == best["key"] and record["space_options"] == {"channels": 8, "cells_per_stage": 1}
    assert record["training"]["epochs"] == 1 and len(record["curve"]) == 1
    assert 0 <= record["metrics"]["test_acc"] <= 100 and record["metrics"]["params"] > best["metrics"]["params"]
    assert "retrained |" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (("--strategy", "darts", "--estimator", "train"), "estimator: one-shot strategy 'darts' scores with its supernet"),
    (("--strategy", "random", "--estimator", "supernet"), "strategy: 'random' is not a one-shot method"),
])
def test_bad_one_shot_input_is_one_line_with_exit_code_2(tmp_path, capsys, args, message):
    assert run_cli("search", "--space", "nb201", *args, "--dataset", "digits", "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_retrain_of_a_missing_run_is_refused(tmp_path, capsys):
    assert run_cli("retrain", tmp_path / "nothing") == 2
    assert "runs.db missing" in capsys.readouterr().err


def test_run_oneshot_refuses_a_trained_supernet_without_resume(tmp_path):
    from nasforge.oneshot.run import CHECKPOINT, run_oneshot
    from nasforge.runner.config import RunConfig

    (tmp_path / CHECKPOINT).write_bytes(b"")
    config = RunConfig(out=str(tmp_path), strategy="darts", estimator="supernet", budget=1)
    with pytest.raises(NasforgeError, match="already holds a supernet"):
        run_oneshot(config)
