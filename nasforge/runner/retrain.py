"""Retraining a run's selected architecture from scratch, with a full schedule, into the run directory.

Any finished run (a one-shot search's derived architecture, or any search's `best.json`) can be
retrained: the architecture is rebuilt in the run's space — with `space_options` overriding the run's,
e.g. the benchmark's C=16, N=5 network after a search on a small supernet — and trained by
`TrainingEstimator` on the run's data set (or `dataset`). The result goes to `RUN_DIR/retrain.json`:
key, arch, the space, data set and training settings used, every metric and the learning curve.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasforge.data import load_dataset
from nasforge.estimators.training import TrainingEstimator
from nasforge.runner.run_dir import read_best
from nasforge.runner.search import load_config
from nasforge.spaces import create_space

__all__ = ["RETRAIN", "retrain"]

RETRAIN = "retrain.json"


def retrain(run_dir: str | Path, *, space_options: dict[str, Any] | None = None, dataset: str | None = None,
            seed: int | None = None, **training: Any) -> dict[str, Any]:
    """Train `run_dir`'s best architecture from scratch; `training` are `TrainingEstimator` options
    (epochs, batch_size, optimizer, lr, weight_decay, ...). Returns (and writes) the retrain record."""
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    best = read_best(run_dir)
    options = {**config.space_options, **(space_options or {})}
    space = create_space(config.space, **options)
    arch = space.validate(best["arch"])
    seed = config.seed if seed is None else seed
    data = load_dataset(dataset or config.dataset, seed=seed)
    result = TrainingEstimator(space=space, data=data, seed=seed, **training).evaluate(arch)
    record = {"key": arch.key, "arch": arch.value, "space": config.space, "space_options": options,
              "dataset": dataset or config.dataset, "seed": seed, "training": training,
              "metrics": result.metrics, "cost_s": result.cost_s, "curve": list(result.curve)}
    (run_dir / RETRAIN).write_text(json.dumps(record, indent=2) + "\n")
    return record
