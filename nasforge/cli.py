"""The `nasforge` command: parses and validates input, calls the library, prints results.

Bad input is one line on stderr naming the field and the allowed values, with exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from nasforge.errors import NasforgeError
from nasforge.spaces import list_spaces
from nasforge.strategies import list_strategies

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Neural architecture search: search, inspect and export architectures.")
out = Console(soft_wrap=True)


@app.command()
def search(
    space: Optional[str] = typer.Option(None, help=f"Search space: {', '.join(list_spaces())}."),
    strategy: Optional[str] = typer.Option(None, help=f"Search strategy: {', '.join(list_strategies())}; one-shot (with --estimator supernet): darts, gdas, spos, enas, proxyless (mobilenet)."),
    estimator: Optional[str] = typer.Option(None, help="Estimator: supernet (one-shot strategies: inherited weights), train (real training), learning_curve (a few epochs, extrapolated), zero_cost (proxies of the untrained network; objective zc_score or a proxy) or tabular."),
    dataset: Optional[str] = typer.Option(None, help="digits (default), an .npz, an image folder, torchvision:NAME:ROOT."),
    table: Optional[str] = typer.Option(None, help="NAS-Bench-201-style CSV for the tabular estimator."),
    objective: Optional[str] = typer.Option(None, help="Metric to optimise (default val_acc; params, flops, latency_ms and *_loss minimised, the rest maximised), mnasnet:latency_ms<=T (MnasNet reward; mnasnet-hard:...), or pareto:val_acc,latency_ms (several metrics; costs minimised)."),
    latency_table: Optional[str] = typer.Option(None, help="Lookup table (nasforge latency-table) that predicts latency_ms."),
    budget: Optional[int] = typer.Option(None, help="Number of trials (default 20)."),
    max_seconds: Optional[float] = typer.Option(None, help="Wall-clock budget of this invocation, seconds."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs per trial (train estimator)."),
    seed: Optional[int] = typer.Option(None, help="Seed of every random choice (default 0)."),
    workers: Optional[int] = typer.Option(None, help="Trials run at once (executor processes)."),
    executor: Optional[str] = typer.Option(None, help="inline (default) or processes."),
    trial_timeout: Optional[float] = typer.Option(None, help="Seconds before a trial is stopped and marked failed."),
    max_params: Optional[int] = typer.Option(None, help="Reject, unevaluated, candidates with more parameters."),
    max_flops: Optional[float] = typer.Option(None, help="Reject, unevaluated, candidates with more FLOPs (batch 1)."),
    max_latency_ms: Optional[float] = typer.Option(None, help="Reject, unevaluated, candidates slower (CPU, batch 1, median ms)."),
    devices: Optional[str] = typer.Option(None, help="One-shot strategies: train the supernet data-parallel, one process per device, comma-separated (cpu,cpu or cuda:0,cuda:1); strategy_options.devices in a config."),
    config: Optional[Path] = typer.Option(None, help="YAML file with the same fields; flags win over it."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run directory (runs.db, trials.csv, best.json)."),
    resume: bool = typer.Option(False, help="Continue the run in --out where it stopped."),
) -> None:
    """Search a space for the best architecture and write the run directory."""
    import optuna

    from nasforge.runner.config import RunConfig
    from nasforge.runner.search import load_config, run_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar reports trials; Optuna's log would repeat it

    flags = dict(space=space, strategy=strategy, estimator=estimator, dataset=dataset, table=table,
                 objective=objective, latency_table=latency_table, budget=budget, max_seconds=max_seconds, epochs=epochs, seed=seed,
                 workers=workers, executor=executor, trial_timeout=trial_timeout,
                 out=None if out_dir is None else str(out_dir))
    strategy_options = None if devices is None else {"devices": devices.split(",")}
    limits = {k: v for k, v in {"max_params": max_params, "max_flops": max_flops, "max_latency_ms": max_latency_ms}.items()
              if v is not None}
    if resume:
        if out_dir is None:
            raise NasforgeError("out: --resume needs the run directory (--out RUN_DIR)")
        changed = {k: v for k, v in {**flags, **limits, "devices": devices}.items()
                   if v is not None and k not in ("out", "budget", "max_seconds", "workers", "executor")}
        if changed:
            raise NasforgeError(f"resume: {next(iter(changed))} is fixed by the run being resumed (allowed: budget, max_seconds, workers, executor)")
        run_config = load_config(out_dir, budget=budget, max_seconds=max_seconds, workers=workers, executor=executor)
    elif config is not None:
        run_config = RunConfig.from_yaml(config, **flags, strategy_options=strategy_options, constraints=limits or None)
    else:
        run_config = RunConfig.from_mapping({k: v for k, v in flags.items() if v is not None} | {"constraints": limits}
                                            | ({} if strategy_options is None else {"strategy_options": strategy_options}))
    if devices is not None:
        from nasforge.oneshot import list_methods

        if run_config.strategy not in list_methods():
            raise NasforgeError(f"devices: only the one-shot strategies ({', '.join(list_methods())}) train on several "
                                f"devices, not '{run_config.strategy}'")
    outcome = run_search(run_config, resume=resume, progress=True)
    failed = sum(t.status == "failed" for t in outcome.trials)
    out.print(f"{len(outcome.trials)} trials ({failed} failed{_rejected(outcome.rejected)}) in {outcome.run_dir}")
    if outcome.best is None:
        out.print("no trial succeeded: see trials.csv for the errors")
        raise typer.Exit(1)
    metrics = outcome.best.result.metrics
    shown = ", ".join(f"{m}={metrics[m]:.4g}" for m in ("val_acc", "test_acc", "params", "flops", "latency_ms") if m in metrics)
    out.print(f"best: {outcome.best.arch.key}\n      {shown}")
    if (outcome.run_dir / "pareto.json").is_file():
        out.print(f"Pareto front: {outcome.run_dir / 'pareto.json'}, plot: {outcome.run_dir / 'pareto.html'}")


@app.command()
def show(run_dir: Path = typer.Argument(..., help="A run directory."),
         top: int = typer.Option(10, help="How many trials to list.")) -> None:
    """List a run's best trials as a table (a multi-objective run: its Pareto set)."""
    from nasforge.objective import parse_objective
    from nasforge.runner.run_dir import DATABASE, pareto_trials
    from nasforge.strategies.constrained import Constraints
    from nasforge.runner.search import load_config
    from nasforge.runner.store import Store

    if top < 1:
        raise NasforgeError(f"top: must be >= 1, got {top}")
    config = load_config(run_dir)
    store = Store(Path(run_dir) / DATABASE, space=config.space)
    trials = store.trials()
    rejected = store.get_meta("rejected", 0)
    store.close()
    objective = parse_objective(config.objective)
    if objective.multi:
        scored = sorted(pareto_trials(trials, objective, Constraints.from_mapping(config.constraints)),
                        key=lambda t: (-objective.score(t.result), t.id))
    else:
        scored = sorted((t for t in trials if t.result and objective.score(t.result) is not None),
                        key=lambda t: (-objective.score(t.result), t.id))
    shown = scored if objective.multi else scored[:top]
    columns = [c for c in dict.fromkeys(("val_acc", "test_acc", *objective.names, "params", "flops", "latency_ms"))
               if any(c in t.result.metrics for t in shown)]
    with_fidelity = any(t.fidelity is not None for t in shown)
    table = Table(title=f"{run_dir}: {len(trials)} trials, {sum(t.status == 'failed' for t in trials)} failed"
                        f"{_rejected(rejected)}, {config.space} / {config.strategy} / {config.estimator}"
                        + (f"; Pareto set of {config.objective}: {len(shown)} trials" if objective.multi else ""))
    for name in ("trial", *columns, "seconds", *(["fidelity"] if with_fidelity else []), "arch"):
        table.add_column(name, overflow="fold")
    for t in shown:
        m = t.result.metrics
        table.add_row(str(t.id), *(f"{m[c]:.4g}" if c in m else "" for c in columns), f"{t.result.cost_s:.2f}",
                      *([f"{t.fidelity:g}" if t.fidelity is not None else ""] if with_fidelity else []), t.arch.key)
    out.print(table)


@app.command()
def export(run_dir: Path = typer.Argument(..., help="A finished run directory."),
           input_shape: Optional[str] = typer.Option(None, help="C,H,W (default: the run's data; 3,32,32 for tables)."),
           num_classes: Optional[int] = typer.Option(None, help="Classes (default: the run's data; 10 for tables).")) -> None:
    """Write the best architecture as JSON, TorchScript and ONNX under RUN_DIR/export/."""
    from nasforge.export import export_model
    from nasforge.runner.run_dir import read_best
    from nasforge.runner.search import load_config
    from nasforge.spaces import create_space

    config = load_config(run_dir)
    best = read_best(run_dir)
    space = create_space(config.space, **config.space_options)
    arch = space.validate(best["arch"])
    shape, classes = _data_shape(config, input_shape, num_classes)
    target = Path(run_dir) / "export"
    target.mkdir(exist_ok=True)
    (target / "arch.json").write_text(json.dumps({"space": config.space, "space_options": config.space_options,
                                                  "key": arch.key, "arch": arch.value,
                                                  "input_shape": list(shape), "num_classes": classes}, indent=2) + "\n")
    paths = export_model(space.build(arch, shape, classes), shape, target)
    for fmt, path in {"json": target / "arch.json", **paths}.items():
        out.print(f"{fmt}: {path}")


@app.command()
def retrain(run_dir: Path = typer.Argument(..., help="A finished run directory (any search, one-shot or not)."),
            epochs: int = typer.Option(50, help="Training epochs (cosine schedule to zero over them)."),
            batch_size: int = typer.Option(64, help="Images per step."),
            optimizer: str = typer.Option("sgd", help="sgd (Nesterov momentum) or adam."),
            lr: Optional[float] = typer.Option(None, help="Initial learning rate (default 0.05 sgd, 1e-3 adam)."),
            weight_decay: Optional[float] = typer.Option(None, help="L2 weight decay (default 5e-4 sgd, 0 adam)."),
            label_smoothing: float = typer.Option(0.0, help="Label smoothing of the cross-entropy."),
            patience: Optional[int] = typer.Option(None, help="Stop after this many epochs without a better val_acc."),
            dataset: Optional[str] = typer.Option(None, help="Train on this data set instead of the run's."),
            space_option: list[str] = typer.Option([], help="KEY=VALUE overriding the run's space options, e.g. channels=16 (repeatable)."),
            seed: Optional[int] = typer.Option(None, help="Seed (default: the run's)."),
            device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:N (default: cuda when present)."),
            latency: bool = typer.Option(False, help="Also measure CPU latency of the trained network.")) -> None:
    """Train a run's best architecture from scratch and write RUN_DIR/retrain.json."""
    from nasforge.runner.retrain import RETRAIN, retrain as retrain_run

    options = {}
    for item in space_option:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise NasforgeError(f"space_option: expected KEY=VALUE, got '{item}'")
        options[name] = _read_arch(value)  # JSON scalars: 16 -> int, true -> bool; else the text
    record = retrain_run(run_dir, space_options=options, dataset=dataset, seed=seed, epochs=epochs,
                         batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                         label_smoothing=label_smoothing, patience=patience, device=device, latency=latency)
    m = record["metrics"]
    shown = ", ".join(f"{k}={m[k]:.4g}" for k in ("val_acc", "test_acc", "params", "flops", "latency_ms", "epochs") if k in m)
    out.print(f"retrained {record['key']}\n      {shown}\n      -> {Path(run_dir) / RETRAIN}")


@app.command()
def describe(space: str = typer.Option(..., help="Search space name."),
             arch: str = typer.Option(..., help="The arch's JSON form, or a file holding it."),
             input_shape: str = typer.Option("3,32,32", help="C,H,W."),
             num_classes: int = typer.Option(10, help="Number of classes."),
             latency: bool = typer.Option(False, help="Also measure CPU latency (batch 1, median ms).")) -> None:
    """Print an architecture's parameters, FLOPs and optionally latency as one JSON object."""
    from nasforge.hardware import model_costs
    from nasforge.spaces import create_space

    shape = _parse_shape(input_shape)
    if num_classes < 1:
        raise NasforgeError(f"num_classes: must be >= 1, got {num_classes}")
    the_space = create_space(space)
    the_arch = the_space.validate(_read_arch(arch))
    costs = model_costs(the_space.build(the_arch, shape, num_classes), shape, latency=latency)
    print(json.dumps({"space": space, "key": the_arch.key, "input_shape": list(shape), "num_classes": num_classes, **costs}))


@app.command("latency-table")
def latency_table(space: str = typer.Option(..., help="Search space name."),
                  out_path: Path = typer.Option(..., "--out", help="Where to write the table (JSON)."),
                  backend: str = typer.Option("onnxruntime", help="eager, torchscript or onnxruntime."),
                  input_shape: str = typer.Option("3,224,224", help="C,H,W of the networks' input."),
                  num_classes: int = typer.Option(1000, help="Number of classes."),
                  threads: int = typer.Option(1, help="Threads of the runtime."),
                  batch_size: int = typer.Option(1, help="Batch size."),
                  clock: str = typer.Option("wall", help="wall, or cpu: the thread's CPU time (threads 1; leaves out waits for a busy machine's cores)."),
                  samples: int = typer.Option(100, help="Random architectures whose units are measured."),
                  calibration: int = typer.Option(5, help="Further random architectures measured whole, for the scale and overhead."),
                  seed: int = typer.Option(0, help="Seed of the random architectures.")) -> None:
    """Measure a latency lookup table: every distinct unit of SAMPLES random architectures, once."""
    import numpy as np

    from nasforge.hardware.lookup import build_table
    from nasforge.spaces import create_space

    shape = _parse_shape(input_shape)
    for name, value in (("num_classes", num_classes), ("threads", threads), ("batch_size", batch_size),
                        ("samples", samples), ("calibration", calibration)):
        if value < 1:
            raise NasforgeError(f"{name}: must be >= 1, got {value}")
    the_space = create_space(space)
    rng = np.random.default_rng(seed)
    archs = [the_space.sample(rng) for _ in range(samples + calibration)]
    table = build_table(the_space, archs[:samples], input_shape=shape, num_classes=num_classes, backend=backend,
                        threads=threads, batch_size=batch_size, calibration=archs[samples:], clock=clock)
    table.save(out_path)
    out.print(f"{len(table.units)} units, scale {table.scale:.3f}, overhead {table.overhead_ms:.3f} ms, {backend} on {table.device}: {out_path}")


@app.command()
def scale(run_dir: Path = typer.Argument(..., help="A finished run directory."),
          phi: Optional[float] = typer.Option(None, help="Compound coefficient: about 2^phi x the FLOPs."),
          flops_target: Optional[float] = typer.Option(None, help="Scale to about this many FLOPs (batch 1) instead of --phi."),
          alpha: float = typer.Option(1.2, help="Depth multiplier per unit of phi (EfficientNet's 1.2)."),
          beta: float = typer.Option(1.1, help="Width multiplier per unit of phi (EfficientNet's 1.1)."),
          gamma: float = typer.Option(1.15, help="Resolution multiplier per unit of phi (EfficientNet's 1.15)."),
          input_shape: Optional[str] = typer.Option(None, help="C,H,W before scaling (default: the run's data; 3,32,32 for tables)."),
          num_classes: Optional[int] = typer.Option(None, help="Classes (default: the run's data; 10 for tables)."),
          out_path: Optional[Path] = typer.Option(None, "--out", help="Where to write the JSON (default RUN_DIR/scaled.json).")) -> None:
    """Scale the run's best architecture with EfficientNet's compound scaling; write and print it as JSON."""
    from nasforge.hardware import count_flops, count_params
    from nasforge.runner.run_dir import read_best
    from nasforge.runner.search import load_config
    from nasforge.scaling import flops_of, scale as compound_scale, scale_to_flops
    from nasforge.spaces import create_space

    if (phi is None) == (flops_target is None):
        raise NasforgeError("phi: give exactly one of --phi and --flops-target")
    best = read_best(run_dir)  # first: its error names a missing run directory
    config = load_config(run_dir)
    space = create_space(config.space, **config.space_options)
    arch = space.validate(best["arch"])
    shape, classes = _data_shape(config, input_shape, num_classes)
    coefficients = (alpha, beta, gamma)
    scaled = (compound_scale(space, arch, shape, phi, coefficients) if flops_target is None
              else scale_to_flops(space, arch, shape, classes, flops_target, coefficients))
    model = scaled.build(classes)
    before = space.build(arch, shape, classes)
    info = {"space": scaled.space, "space_options": scaled.options, "key": scaled.arch.key, "arch": scaled.arch.value,
            "input_shape": list(scaled.input_shape), "num_classes": classes, "phi": scaled.phi,
            "multipliers": dict(zip(("depth", "width", "resolution"), scaled.multipliers)),
            "params": count_params(model), "flops": flops_of(scaled, classes),
            "original": {"key": arch.key, "input_shape": list(shape), "params": count_params(before),
                         "flops": count_flops(before, shape)}}
    target = out_path or Path(run_dir) / "scaled.json"
    target.write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))


design_space = typer.Typer(no_args_is_help=True, help="Compare design spaces by their error distributions.")
app.add_typer(design_space, name="design-space")


@design_space.command("compare")
def design_space_compare(
    spaces: list[str] = typer.Argument(..., help=f"Spaces to compare: {', '.join(list_spaces())}."),
    n: int = typer.Option(20, "--n", help="Models sampled and trained per space."),
    epochs: int = typer.Option(3, help="Training epochs per model."),
    dataset: str = typer.Option("digits", help="digits (default), an .npz, an image folder, torchvision:NAME:ROOT."),
    flops_range: str = typer.Option(..., help="LO,HI: FLOPs (batch 1, nasforge's count) every sampled model must have."),
    seed: int = typer.Option(0, help="Seed of the sampling and training."),
    out_dir: Path = typer.Option(..., "--out", help="Directory for comparison.json, comparison.md and edf.html."),
) -> None:
    """Sample N models per space in a FLOPs range, train each briefly, and compare the spaces' error EDFs."""
    from nasforge.data import load_dataset
    from nasforge.design.compare import compare_spaces, markdown, write_comparison
    from nasforge.spaces import create_space

    if epochs < 1:
        raise NasforgeError(f"epochs: must be >= 1, got {epochs}")
    if len(set(spaces)) != len(spaces):
        raise NasforgeError(f"spaces: each space once, got {' '.join(spaces)}")
    try:
        low, high = (float(part) for part in flops_range.split(","))
    except ValueError:
        raise NasforgeError(f"flops_range: expected LO,HI numbers, got '{flops_range}'") from None
    chosen = {name: create_space(name) for name in spaces}
    data = load_dataset(dataset, seed=seed)
    results = compare_spaces(chosen, data, n=n, epochs=epochs, flops_range=(low, high), seed=seed, progress=out.print)
    summary = write_comparison(results, out_dir)
    out.print(markdown(summary))
    out.print(f"written: {out_dir}/comparison.json, comparison.md, edf.html")


def _rejected(count: int) -> str:
    """The summary's note of candidates the constraints rejected before evaluation (none: nothing)."""
    return f", {count} infeasible rejected" if count else ""


def _read_arch(text: str) -> Any:
    """JSON text, a file holding it, or a bare string (NAS-Bench-201's arch strings need no quotes)."""
    path = Path(text)
    if len(text) < 4096 and path.is_file():
        text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if text.lstrip().startswith(("{", "[")):
            raise NasforgeError("arch: not valid JSON (give the space's JSON form or a file holding it)") from None
        return text.strip()


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise NasforgeError(f"input_shape: expected C,H,W with positive integers, got '{text}'")
    return shape


def _data_shape(config: Any, input_shape: str | None, num_classes: int | None) -> tuple[tuple[int, ...], int]:
    from nasforge.runner.search import TABLE_INPUT

    if config.estimator in ("train", "learning_curve", "zero_cost", "supernet") and (input_shape is None or num_classes is None):
        from nasforge.data import load_dataset

        data = load_dataset(config.dataset, seed=config.seed)
        return (_parse_shape(input_shape) if input_shape else data.input_shape), num_classes or data.num_classes
    return (_parse_shape(input_shape) if input_shape else TABLE_INPUT[0]), num_classes or TABLE_INPUT[1]


#: click's UsageError, whether typer vendors click or uses it (typer exposes only its subclass)
_UsageError = typer.BadParameter.__bases__[0]


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors with exit code 2 for bad input, 130 for Ctrl-C."""
    try:
        code = app(args=argv, standalone_mode=False)
    except _UsageError as error:
        print(f"error: {error.format_message()}".splitlines()[0], file=sys.stderr)
        sys.exit(2)
    except NasforgeError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted: every finished trial is saved; continue with --resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
