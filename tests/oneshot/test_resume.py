"""Supernet training resumes exactly: after an interruption between epochs, and after kill -9 of a real
`nasforge search` process (weights, alphas, controller, optimiser states and RNG all restored)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from nasforge.cli import main
from nasforge.data import load_dataset
from nasforge.oneshot import create_method
from nasforge.spaces.nb201 import NB201Space
from nasforge.threads import torch_threads

SPACE = NB201Space(channels=4, cells_per_stage=1)


class Stop(Exception):
    pass


def _same_state(a, b) -> None:
    """Two checkpoints hold the same tensors and values, key by key (the log's wall times aside)."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            if k != "seconds":
                _same_state(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same_state(x, y)
    elif isinstance(a, np.random.Generator):
        assert a.bit_generator.state == b.bit_generator.state
    elif hasattr(a, "__array__"):
        assert (a == b).all()
    else:
        assert a == b


@pytest.mark.parametrize("method", ["darts", "spos", "enas"])
def test_an_interrupted_fit_continues_from_its_checkpoint_as_if_never_stopped(tmp_path, method):
    d = load_dataset("digits", seed=0)
    data = replace(d, x_train=d.x_train[:128], y_train=d.y_train[:128], x_val=d.x_val[:64], y_val=d.y_val[:64])
    options = dict(space=SPACE, data=data, epochs=3, batch_size=32, seed=4)
    if method == "enas":
        options["controller_batch"] = 2
    check_exact_resume(lambda: create_method(method, **options), tmp_path / "ckpt.pt", epochs=3)


def check_exact_resume(make, checkpoint, *, epochs: int):
    """A fit stopped after its first epoch and resumed from `checkpoint` ends in the uninterrupted fit's
    state; returns both trainers (uninterrupted, resumed)."""
    whole = make()
    whole.fit()

    def stop_after_first(row):
        raise Stop

    with pytest.raises(Stop):
        make().fit(checkpoint=checkpoint, on_epoch=stop_after_first)
    trained = []
    resumed = make()
    resumed.fit(checkpoint=checkpoint, on_epoch=trained.append)
    assert len(trained) == epochs - 1 and len(resumed.log) == epochs  # continued, not restarted
    _same_state(resumed.state_dict(), whole.state_dict())
    return whole, resumed

CONFIG = """
space: nb201
space_options: {channels: 4, cells_per_stage: 1}
strategy: gdas
strategy_options: {batch_size: 128}
estimator: supernet
dataset: digits
epochs: 6
seed: 2
"""


def _search(config, out, *extra):
    return [sys.executable, "-m", "nasforge.cli", "search", "--config", str(config), "--out", str(out), *extra]


def _epochs(run_dir) -> int:
    path = run_dir / "supernet_log.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_kill_9_mid_training_and_resume_gives_the_uninterrupted_run(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with torch_threads(1), pytest.raises(SystemExit) as done:  # the uninterrupted run in this process, on one thread too
        main([str(a) for a in _search(config, tmp_path / "whole")[3:]])
    assert done.value.code == 0

    parts = tmp_path / "parts"
    proc = subprocess.Popen(_search(config, parts), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while _epochs(parts) < 2:
        assert proc.poll() is None, "the search ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= _epochs(parts) < 6
    subprocess.run(_search(config, parts, "--resume"), check=True, capture_output=True, env=env)

    load = lambda run: torch.load(run / "supernet.pt", weights_only=False)  # noqa: E731
    _same_state(load(parts), load(tmp_path / "whole"))
    rows = [[{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in (run / "supernet_log.jsonl").open()]
            for run in (parts, tmp_path / "whole")]
    assert rows[0] == rows[1] and len(rows[0]) == 6
    best = [json.loads((run / "best.json").read_text()) for run in (parts, tmp_path / "whole")]
    assert best[0]["key"] == best[1]["key"] and best[0]["metrics"] == best[1]["metrics"]
