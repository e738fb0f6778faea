"""Search strategies on the NAS-Bench-201 table: test accuracy of the best-validation architecture
found after each query budget, mean ± std over seeds, with Optuna's TPE and random sampler as peers.

    python benchmarks/nb201_strategies.py [--quick] [--json PATH] [--table PATH] [--seeds 30] [--methods a,b] [--workers 2] [--update]

Every registered strategy runs through the real runner and store; the peers `optuna-tpe` and
`optuna-random` call Optuna directly. A repeated architecture costs a query. Selection is by val_acc
only; test_acc is reported. `--quick` runs 3 seeds up to 100 queries.

`bananas+zc-warm-start` first evaluates the 10 best of 100 random architectures by the unlabelled
combined zero-cost score (proxies measured by zero_cost_nb201.py, read from its cache), then BANANAS
goes on from their results; those 10 count as queries, and the proxies cost 100 x the all-proxy
seconds per architecture of benchmarks/results/zero_cost_nb201.md on top of each run.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from common import RESULTS, markdown_table, parser, publish
from zero_cost_nb201 import read_scores

from nasforge.estimators.tabular import TabularEstimator
from nasforge.runner.executors import InlineExecutor
from nasforge.runner.runner import Runner
from nasforge.runner.store import Store
from nasforge.estimators.zero_cost import CombinedScore
from nasforge.estimators.zero_cost.estimator import DEFAULT_COMBINED
from nasforge.spaces import Arch, create_space
from nasforge.spaces.base import SearchSpace
from nasforge.strategies import create_strategy, list_strategies
from nasforge.strategies.warm_start import WarmStart, rank_pool

BUDGETS = (25, 50, 100, 150, 200, 300)
# Optuna's GP sampler refits and optimises its acquisition every query: minutes per 300-query run, so 3 seeds
SEEDS_CAP = {"optuna:gp": 3}


def nasforge_run(name: str, table: TabularEstimator, seed: int, budget: int) -> list[tuple[float, float]]:
    """(val_acc, test_acc) of each query of one nasforge run, through the real runner and store."""
    space = create_space("nb201")
    if name in WARM_STARTED:
        strategy = warm_started(WARM_STARTED[name], space, seed)
    else:
        strategy = create_strategy(name, space, seed=seed)
    store = Store(":memory:", space=space.name)
    runner = Runner(strategy=strategy, executor=InlineExecutor(table), store=store, budget=budget)
    trials = runner.run()
    store.close()
    return [(t.result.metrics["val_acc"], t.result.metrics["test_acc"]) for t in trials]


def optuna_run(sampler: optuna.samplers.BaseSampler, table: TabularEstimator, budget: int) -> list[tuple[float, float]]:
    """The same for an Optuna sampler over the space's six categorical edges (the peers)."""
    space = create_space("nb201")
    study = optuna.create_study(direction="maximize", sampler=sampler)
    queries = []
    for _ in range(budget):
        trial = study.ask()
        decisions = [c.options.index(trial.suggest_categorical(c.name, list(c.options))) for c in space.choices]
        metrics = table.evaluate(space.decode(decisions)).metrics
        study.tell(trial, metrics["val_acc"])
        queries.append((metrics["val_acc"], metrics["test_acc"]))
    return queries


def warm_started(name: str, space: SearchSpace, seed: int) -> WarmStart:
    """Strategy `name` after the `WARM_TOP` best of `WARM_POOL` architectures by the unlabelled combined
    zero-cost score; the pool is drawn with `seed` from the first `WARM_SOURCE` architectures whose
    proxies zero_cost_nb201.py measured (a uniform sample of the space, so the pool is one too)."""
    scores = _SCORES.setdefault(ZERO_COST_SCORES, read_scores(ZERO_COST_SCORES))
    keys = list(scores)[:WARM_SOURCE]
    if len(keys) < WARM_SOURCE:
        raise RuntimeError(f"{ZERO_COST_SCORES} holds {len(keys)} architectures; run benchmarks/zero_cost_nb201.py first")
    pool = [keys[i] for i in np.random.default_rng([seed, WARM_POOL]).choice(len(keys), WARM_POOL, replace=False)]
    rows = [scores[k] for k in pool]
    combined = CombinedScore(list(DEFAULT_COMBINED)).set_reference(rows).scores(rows)
    ranked = rank_pool([space.validate(k) for k in pool], combined.tolist(), top=WARM_TOP)
    return WarmStart(create_strategy(name, space, seed=seed), ranked)


def anytime_test_acc(queries: list[tuple[float, float]], budget: int) -> float:
    """Test accuracy of the first architecture with the best val_acc among the first `budget` queries."""
    vals = [v for v, _ in queries[:budget]]
    return queries[int(np.argmax(vals))][1]


def cli_seconds(table: Path, budget: int) -> float:
    """Wall time of one `nasforge search` command (process start and imports included)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nasforge.cli", "search", "--space", "nb201", "--estimator", "tabular",
                        "--table", str(table), "--strategy", "evolution", "--budget", str(budget), "--seed", "0",
                        "--out", f"{out}/run"], check=True, capture_output=True)
        return time.perf_counter() - start


def report(results: dict) -> str:
    """The markdown table of a results dict (as `main` writes it)."""
    budgets, oracle = results["budgets"], results["oracle_test_acc"]
    header = ["method", "seeds", *(f"{b} queries" for b in budgets), "regret@100", f"s / {max(budgets)}-query run"]
    body = [[name, r["seeds"], *(f"{r['mean'][b]:.2f} ± {r['std'][b]:.2f}" for b in budgets), f"{round(r['regret'][100], 2) + 0.0:.2f}",
             f"{r['seconds_per_run']:.3f}"] for name, r in results["methods"].items()]
    return markdown_table(header, body) + (
        f"\n\nMean ± std test accuracy (%) of the best-validation architecture so far, over seeds; "
        f"oracle (test acc of the best-val architecture) {oracle:.2f}. One `nasforge search ... --strategy "
        f"evolution --budget 150` command: {results['cli_seconds_budget150']:.2f} s wall."
    )


PEERS = {"optuna-tpe": optuna.samplers.TPESampler, "optuna-random": optuna.samplers.RandomSampler}
_TABLES: dict[Path, TabularEstimator] = {}  # one table per process
#: warm-started rows: method name -> the strategy that goes on after the pool
WARM_STARTED = {"bananas+zc-warm-start": "bananas"}
WARM_POOL, WARM_TOP, WARM_SOURCE = 100, 10, 300
ZERO_COST_SCORES = RESULTS / "zero_cost_nb201_scores.csv"
_SCORES: dict[Path, dict] = {}


def timed_run(name: str, seed: int, table_path: Path, budget: int) -> tuple[list[tuple[float, float]], float]:
    """The queries of one run of method `name` and its wall time (a function of module level: it runs in workers)."""
    table = _TABLES.setdefault(table_path, TabularEstimator(table_path))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    if name in PEERS:
        queries = optuna_run(PEERS[name](seed=seed), table, budget)
    else:
        queries = nasforge_run(name, table, seed, budget)
    return queries, time.perf_counter() - started


def earlier_rows(path: Path, results: dict, methods: list[str]) -> dict:
    """The rows of the results at `path` for methods other than `methods`, if they were measured with
    the same seeds and budgets as `results` (else none), their per-budget fields keyed by int again."""
    if not path.is_file():
        return {}
    before = json.loads(path.read_text())
    if before.get("budgets") != results["budgets"] or before.get("seeds") != results["seeds"]:
        return {}
    return {name: {field: {int(b): v for b, v in value.items()} if isinstance(value, dict) else value
                   for field, value in row.items()}
            for name, row in before["methods"].items() if name not in methods}


def main() -> None:
    p = parser(__doc__.splitlines()[0], table=True)
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--methods", help="comma-separated subset of the methods (default: every strategy and peer)")
    p.add_argument("--workers", type=int, default=1, help="processes running seeds side by side (one per core)")
    p.add_argument("--update", action="store_true",
                   help="keep the other methods' rows of the results written before (same seeds and budgets)")
    args = p.parse_args()
    if args.workers < 1:
        p.error(f"--workers: expected a positive integer, got {args.workers}")
    seeds, budgets = (3, BUDGETS[:3]) if args.quick else (args.seeds, BUDGETS)
    table = TabularEstimator(args.table)
    rows_by_val = [table.evaluate(Arch.of("nb201", key)).metrics for key in table.keys()]
    oracle = max(rows_by_val, key=lambda m: m["val_acc"])["test_acc"]
    methods = [*list_strategies(), *WARM_STARTED, *PEERS]
    if args.methods:
        unknown = sorted(set(args.methods.split(",")) - set(methods))
        if unknown:
            p.error(f"--methods: unknown '{unknown[0]}' (allowed: {', '.join(methods)})")
        methods = [name for name in methods if name in args.methods.split(",")]
    results = {"budgets": list(budgets), "seeds": seeds, "oracle_test_acc": oracle, "workers": args.workers,
               "cli_seconds_budget150": cli_seconds(args.table, 150), "methods": {}}
    rows = results["methods"]
    if args.update:
        rows.update(earlier_rows(RESULTS / f"nb201_strategies{'_quick' if args.quick else ''}.json", results, methods))
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for name in methods:
            seeds_here = min(seeds, SEEDS_CAP.get(name, seeds))
            runs = pool.starmap(timed_run, [(name, s, args.table, max(budgets)) for s in range(seeds_here)])
            accs = {b: [anytime_test_acc(queries, b) for queries, _ in runs] for b in budgets}
            rows[name] = {
                "mean": {b: float(np.mean(a)) for b, a in accs.items()},
                "std": {b: float(np.std(a)) for b, a in accs.items()},
                "regret": {b: float(oracle - np.mean(a)) for b, a in accs.items()},
                "seconds_per_run": float(np.mean([seconds for _, seconds in runs])),
                "seeds": seeds_here,
            }
            print(f"{name}: " + " ".join(f"{b}:{rows[name]['mean'][b]:.2f}" for b in budgets)
                  + f" ({rows[name]['seconds_per_run']:.2f} s/run)", flush=True)
            # written after every method: a long run stopped early keeps what it measured
            publish("nb201_strategies", results, report(results), args.json, quick=args.quick, echo=name == methods[-1])


if __name__ == "__main__":
    main()
