"""Multi-objective search on the NAS-Bench-201 table: val_acc (maximised) x FLOPs of the nasforge-built
network (minimised), hypervolume after 100 and 300 queries, mean ± std over 20 seeds.

    python benchmarks/pareto_nb201.py [--quick] [--json PATH] [--table PATH] [--seeds 20]

nasforge's `nsga2` and `mo-evolution` run through the real runner and store with the objective
`pareto:val_acc,flops`; the peers are Optuna's `NSGAIISampler` (its defaults, the two objectives as
directions, six categorical edges) and nasforge's uniform `random` search. A repeated architecture costs a
query. The hypervolume is normalised: val_acc / 100 and 1 - FLOPs / (the largest FLOPs of the space), so
the reference point is (0 %, the largest network) and the whole objective box is 1. The HV of the
whole table's Pareto front is the ceiling. `--quick` runs 3 seeds.

FLOPs (`nasforge.hardware.count_flops`, batch 1, 3x32x32, 10 classes) of a cell depend only on how many of
its edges carry each op (every edge of a stage has the same channels and resolution, and additions count
nothing), so one network per count vector (210 of them) is measured and a second network with the same
counts is checked to agree: a minute for all 15,625 cells rather than the 40 min of counting each.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import optuna
from common import markdown_table, parser, publish

from nasforge.estimators.base import Estimator, Result
from nasforge.estimators.tabular import TabularEstimator
from nasforge.hardware import count_flops
from nasforge.hardware.objectives import hypervolume, pareto_front
from nasforge.objective import parse_objective
from nasforge.runner.executors import InlineExecutor
from nasforge.runner.runner import Runner
from nasforge.runner.store import Store
from nasforge.spaces import create_space
from nasforge.spaces.nb201 import NB201_OPS, parse_arch
from nasforge.strategies import create_strategy

BUDGETS = (100, 300)
OURS = ("nsga2", "mo-evolution")
PEERS = ("optuna-nsga2", "random")
OBJECTIVE = "pareto:val_acc,flops"


def cell_flops(keys: list[str]) -> dict[str, int]:
    """FLOPs of the network of each arch key, measured once per count of each op, checked on a second cell."""
    space = create_space("nb201")
    groups: dict[tuple[int, int], list[str]] = defaultdict(list)
    for key in keys:
        ops = parse_arch(key)
        groups[tuple(ops.count(op) for op in NB201_OPS)].append(key)
    flops = {}
    for signature, members in groups.items():
        measured = [count_flops(space.build(space.validate(k), (3, 32, 32), 10), (3, 32, 32)) for k in members[:2]]
        if len(set(measured)) != 1:
            raise AssertionError(f"FLOPs differ within {signature}: {measured} for {members[:2]}")
        flops.update(dict.fromkeys(members, measured[0]))
    return flops


class WithFlops(Estimator):
    """The table's metrics plus the network's FLOPs."""

    def __init__(self, table: TabularEstimator, flops: dict[str, int]) -> None:
        self.table, self.flops = table, flops

    def evaluate(self, arch, fidelity=None) -> Result:
        result = self.table.evaluate(arch)
        return Result(metrics={**result.metrics, "flops": float(self.flops[arch.key])})


def nasforge_run(name: str, estimator: WithFlops, seed: int, budget: int) -> list[tuple[float, float]]:
    """(val_acc, flops) of each query of one nasforge run, through the real runner and store."""
    space = create_space("nb201")
    strategy = create_strategy(name, space, objective=parse_objective(OBJECTIVE), seed=seed)
    store = Store(":memory:", space=space.name)
    trials = Runner(strategy=strategy, executor=InlineExecutor(estimator), store=store, budget=budget).run()
    store.close()
    return [(t.result.metrics["val_acc"], t.result.metrics["flops"]) for t in trials]


def optuna_run(seed: int, estimator: WithFlops, budget: int) -> list[tuple[float, float]]:
    """The same for Optuna's NSGA-II with its defaults, maximising val_acc and minimising FLOPs."""
    space = create_space("nb201")
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.NSGAIISampler(seed=seed))
    queries = []
    for _ in range(budget):
        trial = study.ask()
        decisions = [c.options.index(trial.suggest_categorical(c.name, list(c.options))) for c in space.choices]
        metrics = estimator.evaluate(space.decode(decisions)).metrics
        study.tell(trial, [metrics["val_acc"], metrics["flops"]])
        queries.append((metrics["val_acc"], metrics["flops"]))
    return queries


def normalised_hv(queries: list[tuple[float, float]], max_flops: float) -> float:
    """Hypervolume of (val_acc / 100, 1 - flops / max_flops) against the origin: 1 is the whole box."""
    points = [(acc / 100.0, 1.0 - flops / max_flops) for acc, flops in queries]
    return hypervolume(points, reference=(0.0, 0.0))


def run(table_path: Path, seeds: int) -> dict:
    table = TabularEstimator(table_path)
    flops = cell_flops(table.keys())
    estimator = WithFlops(table, flops)
    max_flops = float(max(flops.values()))
    everything = [(table.evaluate(create_space("nb201").validate(k)).metrics["val_acc"], float(flops[k]))
                  for k in table.keys()]
    front = pareto_front([(a, -f) for a, f in everything])
    results: dict = {"hypervolume": {}, "seconds_per_run": {}, "seeds": seeds, "budgets": list(BUDGETS),
                     "table_front_hv": normalised_hv([everything[i] for i in front], max_flops),
                     "table_front_size": len(front)}
    for method in OURS + PEERS:
        hvs = defaultdict(list)
        started = time.perf_counter()
        for seed in range(seeds):
            if method == "optuna-nsga2":
                queries = optuna_run(seed, estimator, max(BUDGETS))
            else:
                queries = nasforge_run(method, estimator, seed, max(BUDGETS))
            for budget in BUDGETS:
                hvs[budget].append(normalised_hv(queries[:budget], max_flops))
        results["seconds_per_run"][method] = (time.perf_counter() - started) / seeds
        results["hypervolume"][method] = {str(b): {"mean": float(np.mean(v)), "std": float(np.std(v))}
                                          for b, v in hvs.items()}
    return results


def report(results: dict) -> str:
    header = ["method", *(f"HV @ {b}" for b in results["budgets"]), "s / run"]
    rows = [[method, *(f"{cells[str(b)]['mean']:.4f} ± {cells[str(b)]['std']:.4f}" for b in results["budgets"]),
             f"{results['seconds_per_run'][method]:.2f}"] for method, cells in results["hypervolume"].items()]
    rows.append(["whole table's front", *(f"{results['table_front_hv']:.4f}" for _ in results["budgets"]), "-"])
    return (f"Normalised hypervolume of (val_acc, FLOPs) on NB201, {results['seeds']} seeds (mean ± std); "
            f"the table's front has {results['table_front_size']} cells.\n\n" + markdown_table(header, rows))


def main() -> None:
    p = parser(__doc__.splitlines()[0], table=True)
    p.add_argument("--seeds", type=int, default=20, help="seeds per method")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = run(args.table, 3 if args.quick else args.seeds)
    publish("pareto_nb201", results, report(results), args.json, quick=args.quick)


if __name__ == "__main__":
    main()
