"""A one-shot search into a standard run directory, from the same `RunConfig` as any search.

`strategy` names the method (`darts`, `gdas`, `spos`, `enas`, `proxyless`) and `strategy_options` its options,
`estimator` must be `supernet` (its options: `SupernetEstimator`'s), `epochs` the supernet's training
epochs and `budget` the architectures scored with inherited weights afterwards (evolution's samples for
SPOS; at most the derived ones for the others); `strategy_options.devices` (`search --devices`) trains
data-parallel (`nasforge.oneshot.distributed`). The directory gets, besides `runs.db`, `trials.csv` and
`best.json` (the best scored architecture, by inherited validation accuracy):

- `supernet.pt`: the training checkpoint, rewritten after every epoch (weights, alphas or controller,
  optimiser states, RNG state); `resume` continues from it, then resumes the scoring from the store;
- `supernet_log.jsonl`: one JSON object per epoch (losses, accuracy, learning rate, seconds and the
  method's monitor: derived arch, skip / pool share and alpha entropy for DARTS and GDAS).
"""

from __future__ import annotations

import json
from pathlib import Path

from nasforge.data import load_dataset
from nasforge.errors import NasforgeError
from nasforge.objective import parse_objective
from nasforge.oneshot import METHODS, SupernetEstimator, create_method
from nasforge.oneshot.trainer import Listed
from nasforge.runner.config import RunConfig
from nasforge.runner.executors import InlineExecutor
from nasforge.runner.run_dir import DATABASE, write_outputs
from nasforge.runner.runner import Runner
from nasforge.runner.store import Store
from nasforge.spaces import create_space
from nasforge.strategies.constrained import Constrained, Constraints, model_cost_function

__all__ = ["CHECKPOINT", "LOG", "run_oneshot"]

CHECKPOINT, LOG = "supernet.pt", "supernet_log.jsonl"


def run_oneshot(config: RunConfig, *, resume: bool = False, progress: bool = False):
    """Train the supernet `config` describes and score its method's proposals; returns a `SearchOutcome`."""
    from nasforge.runner.search import SearchOutcome  # search dispatches here: imported late to avoid a cycle

    if config.strategy not in METHODS.names():
        raise NasforgeError(f"strategy: '{config.strategy}' is not a one-shot method (allowed: {', '.join(METHODS.names())})")
    if config.estimator != "supernet":
        raise NasforgeError(f"estimator: one-shot strategy '{config.strategy}' scores with its supernet "
                            f"(allowed: supernet), got '{config.estimator}'")
    if config.executor != "inline":
        raise NasforgeError(f"executor: one-shot scoring shares one supernet (allowed: inline), got '{config.executor}'")
    run_dir = Path(config.out)
    if not resume and (run_dir / CHECKPOINT).exists():
        raise NasforgeError(f"out: {run_dir} already holds a supernet; pass resume to continue it, or another directory")
    space = create_space(config.space, **config.space_options)
    data = load_dataset(config.dataset, seed=config.seed)
    options = dict(config.strategy_options) | ({} if config.epochs is None else {"epochs": config.epochs})
    method = create_method(config.strategy, space=space, data=data, seed=config.seed, **options)
    run_dir.mkdir(parents=True, exist_ok=True)
    store = Store(run_dir / DATABASE, space=space.name)
    store.set_meta("config", config.to_dict())
    strategy = None
    try:
        method.fit(checkpoint=run_dir / CHECKPOINT, on_epoch=lambda row: _write_log(run_dir / LOG, method.log))
        _write_log(run_dir / LOG, method.log)  # also when a resumed run had no epoch left to train
        strategy = method.proposals(parse_objective(config.objective))
        budget = config.budget
        if isinstance(strategy, Listed):  # the derived architectures are all there is to score
            budget = len(strategy.archs) if budget is None else min(budget, len(strategy.archs))
        constraints = Constraints.from_mapping(config.constraints)
        if constraints.limits:
            strategy = Constrained(strategy, constraints,
                                   model_cost_function(space, data.input_shape, data.num_classes, constraints))
        try:
            estimator = SupernetEstimator(supernet=method.supernet, data=data, **config.estimator_options)
        except TypeError as error:
            raise NasforgeError(f"estimator 'supernet': {error} (allowed options: calibration_images, "
                                f"eval_images, batch_size, threads)") from None
        Runner(strategy=strategy, executor=InlineExecutor(estimator), store=store, budget=budget,
               max_seconds=config.max_seconds, progress=progress).run()
    finally:
        trials = store.trials()
        best = write_outputs(run_dir, trials, parse_objective(config.objective))
        store.close()
    return SearchOutcome(run_dir, trials, best, strategy.rejected if isinstance(strategy, Constrained) else 0)


def _write_log(path: Path, rows: list[dict]) -> None:
    """The whole per-epoch log as JSON lines (rewritten, so a resumed run's log has each epoch once)."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
