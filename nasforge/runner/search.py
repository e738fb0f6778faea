"""One search, from a `RunConfig` to a run directory: wire the components, run, write the outputs."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator
from nasforge.objective import COSTS, Objective, parse_objective
from nasforge.oneshot import list_methods
from nasforge.registry import Registry
from nasforge.runner.config import RunConfig
from nasforge.runner.executors import create_executor
from nasforge.runner.run_dir import DATABASE, write_outputs
from nasforge.runner.runner import Runner
from nasforge.runner.store import Store, Trial
from nasforge.spaces import create_space
from nasforge.spaces.base import SearchSpace
from nasforge.strategies import create_strategy
from nasforge.strategies.base import Strategy
from nasforge.strategies.constrained import Constrained, Constraints, model_cost_function

#: what NAS-Bench-201-style tables were measured on (CIFAR-10): the input a table's networks are built for
TABLE_INPUT: tuple[tuple[int, ...], int] = ((3, 32, 32), 10)


def _training(config: RunConfig, space: SearchSpace) -> Estimator:
    from nasforge.data import load_dataset

    options = dict(config.estimator_options)
    if config.epochs is not None:
        options["epochs"] = config.epochs
    data = load_dataset(config.dataset, seed=config.seed)
    return ESTIMATORS.create("train", space=space, data=data, seed=config.seed, **options)


def _learning_curve(config: RunConfig, space: SearchSpace) -> Estimator:
    """The training estimator of `config` wrapped for extrapolation; options go to the one that takes them."""
    options = dict(config.estimator_options)
    curve_names = [p for p in inspect.signature(ESTIMATORS.factory("learning_curve")).parameters if p != "trainer"]
    train_names = [p for p in inspect.signature(ESTIMATORS.factory("train")).parameters if p not in ("space", "data", "seed")]
    unknown = sorted(set(options) - set(curve_names) - set(train_names))
    if unknown:
        raise NasforgeError(f"estimator 'learning_curve': unknown option '{unknown[0]}' "
                            f"(allowed options: {', '.join(curve_names + train_names)})")
    curve = {name: options.pop(name) for name in curve_names if name in options}
    trainer = _training(replace(config, estimator_options=options), space)
    return ESTIMATORS.create("learning_curve", trainer=trainer, **curve)


def _zero_cost(config: RunConfig, space: SearchSpace) -> Estimator:
    from nasforge.data import load_dataset

    data = load_dataset(config.dataset, seed=config.seed)
    estimator = ESTIMATORS.create("zero_cost", space=space, data=data, seed=config.seed, **config.estimator_options)
    for metric in parse_objective(config.objective).names:
        if metric not in estimator.metric_names and metric not in COSTS:
            raise NasforgeError(f"objective: the zero_cost estimator reports no '{metric}' "
                                f"(allowed: {', '.join(estimator.metric_names)})")
    return estimator


def _tabular(config: RunConfig, space: SearchSpace) -> Estimator:
    if config.table is None:
        raise NasforgeError("table: the tabular estimator needs a table (--table PATH)")
    return ESTIMATORS.create("tabular", table=config.table, **config.estimator_options)


ESTIMATORS: Registry[Estimator] = Registry("estimator")
ESTIMATORS.register("train", "nasforge.estimators.training:TrainingEstimator")
ESTIMATORS.register("tabular", "nasforge.estimators.tabular:TabularEstimator")
ESTIMATORS.register("learning_curve", "nasforge.estimators.learning_curve:LearningCurveEstimator")
ESTIMATORS.register("zero_cost", "nasforge.estimators.zero_cost:ZeroCostEstimator")

#: how each estimator is made from a run's config (the only place that reads a config for it)
_FROM_CONFIG: dict[str, Callable[[RunConfig, SearchSpace], Estimator]] = {
    "train": _training, "tabular": _tabular, "learning_curve": _learning_curve, "zero_cost": _zero_cost}


def network_input(estimator: Estimator) -> tuple[tuple[int, ...], int]:
    """(input shape, class count) the run's networks are built for: the training data's, else `TABLE_INPUT`."""
    from nasforge.estimators.learning_curve import LearningCurveEstimator
    from nasforge.estimators.training import TrainingEstimator
    from nasforge.estimators.zero_cost import ZeroCostEstimator
    from nasforge.hardware.costs import WithCosts

    if isinstance(estimator, WithCosts):
        return estimator.input_shape, estimator.num_classes
    if isinstance(estimator, LearningCurveEstimator):
        estimator = estimator.trainer
    if isinstance(estimator, (TrainingEstimator, ZeroCostEstimator)):
        return estimator.data.input_shape, estimator.data.num_classes
    return TABLE_INPUT


def _with_costs(estimator: Estimator, objective: Objective, config: RunConfig, space: SearchSpace) -> Estimator:
    """`estimator`, adding the hardware costs the objective reads and, with a latency table, its latency_ms."""
    from nasforge.hardware.costs import WithCosts
    from nasforge.hardware.lookup import load_table

    costs = [m for m in objective.names if m in COSTS]
    if not costs and config.latency_table is None:
        return estimator
    table = None if config.latency_table is None else load_table(
        config.latency_table, space=config.space, space_options=config.space_options)
    return WithCosts(estimator, space, *network_input(estimator), costs, latency_table=table)


def _constrained(strategy: Strategy, config: RunConfig, estimator: Estimator) -> Strategy:
    """`strategy`, wrapped to reject candidates that break the config's limits (as it is without any)."""
    constraints = Constraints.from_mapping(config.constraints)
    if not constraints.limits:
        return strategy
    input_shape, num_classes = network_input(estimator)
    costs = model_cost_function(strategy.space, input_shape, num_classes, constraints)
    return Constrained(strategy, constraints, costs)


@dataclass(frozen=True)
class SearchOutcome:
    run_dir: Path
    trials: list[Trial]
    best: Trial | None
    rejected: int = 0  # candidates rejected by the constraints before evaluation (not trials)


def load_config(run_dir: str | Path, **overrides: Any) -> RunConfig:
    """The config a run was started with; `overrides` (non-None: budget, workers, ...) replace fields."""
    path = Path(run_dir) / DATABASE
    if not path.is_file():
        raise NasforgeError(f"run_dir: '{run_dir}' holds no run ({DATABASE} missing)")
    store = Store(path, space="")
    try:
        stored = store.get_meta("config")
    finally:
        store.close()
    return replace(RunConfig.from_mapping(stored), **{k: v for k, v in overrides.items() if v is not None})


def run_search(config: RunConfig, *, resume: bool = False, progress: bool = False) -> SearchOutcome:
    """Run (or, with `resume`, continue) the search `config` describes, writing its run directory."""
    run_dir = Path(config.out)
    if (run_dir / DATABASE).exists() and not resume:
        raise NasforgeError(f"out: '{run_dir}' already holds a run (resume it with --resume, or choose another directory)")
    if resume and not (run_dir / DATABASE).exists():
        raise NasforgeError(f"resume: '{run_dir}' holds no run to resume ({DATABASE} missing)")
    if config.strategy in list_methods() or config.estimator == "supernet":  # one-shot: a supernet, not ask/tell trials
        from nasforge.oneshot.run import run_oneshot

        return run_oneshot(config, resume=resume, progress=progress)
    if config.estimator not in _FROM_CONFIG:
        raise NasforgeError(f"estimator: unknown name '{config.estimator}' (allowed: {', '.join(sorted(_FROM_CONFIG))})")
    space = create_space(config.space, **config.space_options)
    objective = parse_objective(config.objective)
    strategy = create_strategy(config.strategy, space, objective=objective, seed=config.seed, **config.strategy_options)
    estimator = _with_costs(_FROM_CONFIG[config.estimator](config, space), objective, config, space)
    strategy = _constrained(strategy, config, estimator)
    executor = create_executor(config.executor, estimator, workers=config.workers, timeout=config.trial_timeout)
    run_dir.mkdir(parents=True, exist_ok=True)
    store = Store(run_dir / DATABASE, space=space.name)
    store.set_meta("config", config.to_dict())
    fidelity = float(config.epochs) if config.epochs is not None and config.estimator == "train" else None
    runner = Runner(strategy=strategy, executor=executor, store=store, budget=config.budget,
                    max_seconds=config.max_seconds, fidelity=fidelity, progress=progress)
    try:
        runner.run()
    finally:
        trials = store.trials()
        best = write_outputs(run_dir, trials, objective, Constraints.from_mapping(config.constraints))
        rejected = strategy.rejected if isinstance(strategy, Constrained) else 0
        store.set_meta("rejected", rejected)  # for `nasforge show` and reports, which read the store only
        store.close()
    return SearchOutcome(run_dir, trials, best, rejected)
