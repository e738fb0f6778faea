"""The files of a run directory besides the database: `trials.csv`, `best.json` and, for a multi-objective
run, `pareto.json` (the front's records) with `pareto.html` (the Pareto plot)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable

from nasforge.errors import NasforgeError
from nasforge.hardware.objectives import pareto_front
from nasforge.objective import Objective
from nasforge.runner.store import Trial
from nasforge.strategies.constrained import Constraints

DATABASE = "runs.db"


def _candidates(trials: Iterable[Trial], objective: Objective, constraints: Constraints | None) -> list[Trial]:
    """Finished trials with a score (and, for a multi-objective run, every value), at the highest fidelity
    seen, whose recorded metrics keep `constraints`."""
    scored = [t for t in trials if t.result is not None and objective.values(t.result) is not None]
    if constraints is not None:
        scored = [t for t in scored if not constraints.violations(t.result.metrics)]
    top_fidelity = max((t.fidelity for t in scored if t.fidelity is not None), default=None)
    return [t for t in scored if t.fidelity == top_fidelity]


def pareto_trials(trials: Iterable[Trial], objective: Objective, constraints: Constraints | None = None) -> list[Trial]:
    """The non-dominated trials by `objective.values`, among `_candidates`, in trial order."""
    candidates = _candidates(trials, objective, constraints)
    return [candidates[i] for i in pareto_front([objective.values(t.result) for t in candidates])] if candidates else []


def select_best(trials: Iterable[Trial], objective: Objective, constraints: Constraints | None = None) -> Trial | None:
    """The trial with the best objective score among finished ones at the highest fidelity seen.

    Low-fidelity trials are never compared with full ones; ties go to the earliest trial. A trial whose
    recorded metrics break `constraints` is never selected. For a multi-objective run the best is the
    front member with the best score (the first metric): among trials with equal first metrics, one that
    is better in another metric wins. Selection reads only what the objective reads (validation metrics
    and costs), never test metrics.
    """
    pool = pareto_trials(trials, objective, constraints) if objective.multi else _candidates(trials, objective, constraints)
    if not pool:
        return None
    return max(pool, key=lambda t: (objective.score(t.result), -t.id))


def best_record(trial: Trial) -> dict[str, Any]:
    """`best.json`'s object: canonical key, the space's JSON form, every known metric, the trial id."""
    assert trial.result is not None
    return {"key": trial.arch.key, "arch": trial.arch.value, "metrics": dict(trial.result.metrics),
            "trial": trial.id, "fidelity": trial.fidelity}


def write_outputs(run_dir: Path, trials: list[Trial], objective: Objective,
                  constraints: Constraints | None = None) -> Trial | None:
    """Write `trials.csv`, (when a trial succeeded) `best.json` and, for a multi-objective objective,
    `pareto.json` and `pareto.html`; returns the best trial."""
    metric_names = sorted({m for t in trials if t.result is not None for m in t.result.metrics})
    with (run_dir / "trials.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "key", "status", "fidelity", *metric_names, "cost_s", "error"])
        for t in trials:
            metrics = t.result.metrics if t.result else {}
            writer.writerow([t.id, t.arch.key, t.status, "" if t.fidelity is None else t.fidelity,
                             *(metrics.get(m, "") for m in metric_names),
                             f"{t.result.cost_s:.4f}" if t.result else "", (t.result.error or "") if t.result else ""])
    best = select_best(trials, objective, constraints)
    if best is not None:
        (run_dir / "best.json").write_text(json.dumps(best_record(best), indent=2) + "\n")
    if objective.multi:
        from nasforge.report.pareto import write_pareto_plot  # plotly only for multi-objective runs

        front = pareto_trials(trials, objective, constraints)
        (run_dir / "pareto.json").write_text(json.dumps([best_record(t) for t in front], indent=2) + "\n")
        write_pareto_plot(run_dir / "pareto.html", _candidates(trials, objective, constraints), front, objective)
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
