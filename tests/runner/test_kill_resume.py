"""A search killed with SIGKILL mid-run and resumed gives the trials of an uninterrupted run (real training)."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

CONFIG = """
space: nb201
space_options: {channels: 4, cells_per_stage: 1}
strategy: evolution
strategy_options: {population_size: 4, sample_size: 2}
estimator: train
estimator_options: {latency: false}
dataset: digits
epochs: 1
budget: 12
seed: 3
"""


def _search(config, out, *extra):
    return [sys.executable, "-m", "nasforge.cli", "search", "--config", str(config), "--out", str(out), *extra]


def _finished(db) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        try:
            return con.execute("SELECT COUNT(*) FROM trials WHERE status != 'running'").fetchone()[0]
        except sqlite3.OperationalError:  # the schema is not written yet
            return 0


def _kill_after(cmd, db, finished: int) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _finished(db) < finished:
        assert proc.poll() is None, "the search ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _rows(run_dir):
    return [(r["trial"], r["key"], r["status"], r["val_acc"], r["test_acc"])
            for r in csv.DictReader((run_dir / "trials.csv").open())]


def test_kill_9_and_resume_gives_the_uninterrupted_trials(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    subprocess.run(_search(config, tmp_path / "whole"), check=True, capture_output=True)

    _kill_after(_search(config, tmp_path / "parts"), tmp_path / "parts" / "runs.db", finished=5)
    assert 5 <= _finished(tmp_path / "parts" / "runs.db") < 12
    subprocess.run(_search(config, tmp_path / "parts", "--resume"), check=True, capture_output=True)

    assert _rows(tmp_path / "parts") == _rows(tmp_path / "whole")
    assert len(_rows(tmp_path / "whole")) == 12


def test_kill_9_with_two_workers_loses_and_repeats_nothing(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    workers = ("--executor", "processes", "--workers", "2")
    db = tmp_path / "run" / "runs.db"
    _kill_after(_search(config, tmp_path / "run", *workers), db, finished=4)
    with sqlite3.connect(db) as con:
        before = con.execute("SELECT id, arch_key, result FROM trials WHERE status != 'running'").fetchall()
    subprocess.run(_search(config, tmp_path / "run", "--resume", *workers), check=True, capture_output=True)
    with sqlite3.connect(db) as con:
        after = con.execute("SELECT id, arch_key, result, status FROM trials ORDER BY id").fetchall()
    assert [row[0] for row in after] == list(range(12))
    assert all(row[3] == "ok" for row in after)
    assert set(before) <= {row[:3] for row in after}  # every finished trial kept, unchanged
