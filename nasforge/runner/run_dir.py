"""The files of a run directory besides the database: `trials.csv` and `best.json`."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable

from nasforge.errors import NasforgeError
from nasforge.objective import Objective
from nasforge.runner.store import Trial

DATABASE = "runs.db"


def select_best(trials: Iterable[Trial], objective: Objective) -> Trial | None:
    """The trial with the best objective score among finished ones at the highest fidelity seen.

    Low-fidelity trials are never compared with full ones; ties go to the earliest trial. Selection
    reads only what the objective reads (validation metrics), never test metrics.
    """
    scored = [(objective.score(t.result), t) for t in trials if t.result is not None]
    scored = [(s, t) for s, t in scored if s is not None]
    if not scored:
        return None
    top_fidelity = max((t.fidelity for _, t in scored if t.fidelity is not None), default=None)
    same = [(s, t) for s, t in scored if t.fidelity == top_fidelity]
    return max(same, key=lambda st: (st[0], -st[1].id))[1]


def best_record(trial: Trial) -> dict[str, Any]:
    """`best.json`'s object: canonical key, the space's JSON form, every known metric, the trial id."""
    assert trial.result is not None
    return {"key": trial.arch.key, "arch": trial.arch.value, "metrics": dict(trial.result.metrics),
            "trial": trial.id, "fidelity": trial.fidelity}


def write_outputs(run_dir: Path, trials: list[Trial], objective: Objective) -> Trial | None:
    """Write `trials.csv` and (when a trial succeeded) `best.json`; returns the best trial."""
    metric_names = sorted({m for t in trials if t.result is not None for m in t.result.metrics})
    with (run_dir / "trials.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "key", "status", "fidelity", *metric_names, "cost_s", "error"])
        for t in trials:
            metrics = t.result.metrics if t.result else {}
            writer.writerow([t.id, t.arch.key, t.status, "" if t.fidelity is None else t.fidelity,
                             *(metrics.get(m, "") for m in metric_names),
                             f"{t.result.cost_s:.4f}" if t.result else "", (t.result.error or "") if t.result else ""])
    best = select_best(trials, objective)
    if best is not None:
        (run_dir / "best.json").write_text(json.dumps(best_record(best), indent=2) + "\n")
    return best


def read_best(run_dir: str | Path) -> dict[str, Any]:
    """The `best.json` of a finished run, or a one-line error saying what is missing."""
    run_dir = Path(run_dir)
    if not (run_dir / DATABASE).is_file():
        raise NasforgeError(f"run_dir: '{run_dir}' holds no run ({DATABASE} missing)")
    path = run_dir / "best.json"
    if not path.is_file():
        raise NasforgeError(f"run_dir: '{run_dir}' has no best.json (no trial succeeded yet)")
    return json.loads(path.read_text())
