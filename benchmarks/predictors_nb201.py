"""Performance predictors on the NAS-Bench-201 table: rank correlation (Spearman, Kendall tau) of each
predictor's mean prediction with the true val_acc of 1000 held-out architectures, after training on
50…400 architectures, mean ± std over seeds; a plain random forest on the one-hot decisions as baseline.

    python benchmarks/predictors_nb201.py [--quick] [--json PATH] [--table PATH] [--seeds 10] [--workers 2]

Each seed draws 1000 held-out architectures and, disjoint from them, a pool of 400; the training sets
are prefixes of the pool, the same for every predictor. Every predictor runs on one thread; the
seconds are one fit plus one prediction of the held-out set. `--quick` runs 3 seeds.

Settings, chosen on tuning seeds 100-104 (the reported seeds are 0-9); mean Spearman at 50/100/200/400:
- `gbt`: GBTPredictor's defaults (tuned there too) on the path encoding: path 0.584/0.743/0.835/0.876,
  one-hot 0.424/0.617/0.739/0.808, both side by side (np.hstack) 0.442/0.647/0.793/0.856. The path
  encoding gives cells that compute the same function the same features; with few results the trees
  otherwise split on one-hot edges that tell equivalent cells apart. Without quantile targets, path:
  0.549/0.733/0.788/0.841.
- `mlp_ensemble`: MLPEnsemble(hidden=(64, 64, 64), steps=300, bootstrap=False) on the path encoding,
  0.654/0.767/0.846/0.895, against the defaults' 0.605/0.729/0.813/0.863 (`mlp_ensemble_defaults`).
  Most of the gain is from training every member on all the data (bootstrap=False alone:
  0.648/0.757/0.843/0.882): bagging, which BANANAS' search keeps for the members' disagreement, costs
  each member about a third of the results. 500 steps gained nothing.
- `gp`: GPPredictor's defaults on the path encoding, 0.562/0.739/0.829/0.887 (optimiser restarts
  changed nothing; one-hot 0.443/0.601/0.711/0.770, both side by side 0.472/0.642/0.741/0.794).
- `random_forest` (the baseline): scikit-learn's RandomForestRegressor, 100 trees, on the one-hot
  decisions, 0.381/0.602/0.717/0.783.

On the reported seeds (results/predictors_nb201.md) every predictor beats the random forest at every
size, but none reaches Spearman 0.85 at 200 on the encodings alone (gp 0.823, mlp_ensemble 0.822, gbt
0.819; 0.87-0.89 at 400); with the proxies as features they do (mlp_ensemble+zc 0.912, gbt+zc 0.914).

With zero-cost proxies as features (a second table): the 1000 cells whose proxies zero_cost_nb201.py
measured (its cache, `--zc-scores`), each seed a pool of 400 and the other 600 held out; features are
each proxy's percentile among those cells (no labels involved). Chosen on seeds 100-102 of the first
564 cells, Spearman at 50/200: GP on the proxies alone 0.870/0.901, MLP ensemble on them
0.889/0.913, GBT on path + proxies 0.828/0.907 (GBT on the proxies alone 0.841/0.898; GP on path +
proxies 0.775/0.913, the path's 84 features drowning the 11 proxies at 50).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import RESULTS, markdown_table, parser, publish
from zero_cost_nb201 import read_scores
from scipy.stats import kendalltau, spearmanr
from sklearn.ensemble import RandomForestRegressor
from threadpoolctl import threadpool_limits

from nasforge.estimators.predictors import GBTPredictor, GPPredictor, MLPEnsemble
from nasforge.estimators.zero_cost import PROXIES, CombinedScore
from nasforge.estimators.tabular import TabularEstimator
from nasforge.spaces.base import Arch
from nasforge.spaces.nb201 import NB201Space

SIZES = (50, 100, 200, 400)
HELD_OUT = 1000


@dataclass(frozen=True)
class Data:
    """Every architecture of a table: its encodings by name and its val_acc."""

    encodings: dict[str, np.ndarray]
    val_acc: np.ndarray


def load(table_path: Path, scores_path: Path | None = None) -> Data:
    """The one-hot decisions (`onehot`), path encoding (`path`) and val_acc of every cell of the table;
    with `scores_path`, of the cells with proxies there only, plus `zc` (each proxy's percentile among
    them) and `path+zc`."""
    table, space = TabularEstimator(table_path), NB201Space()
    scores = read_scores(scores_path) if scores_path else {}
    keys = list(scores) if scores_path else table.keys()
    archs = [Arch.of("nb201", key) for key in keys]
    encodings = {"onehot": np.stack([space.encode(a) for a in archs]),
                 "path": np.stack([space.path_encode(a) for a in archs])}
    if scores_path:
        rows = [scores[k] for k in keys]
        encodings["zc"] = CombinedScore(list(PROXIES)).set_reference(rows).percentiles(rows)
        encodings["path+zc"] = np.hstack([encodings["path"], encodings["zc"]])
    return Data(encodings, np.array([table.evaluate(a).metrics["val_acc"] for a in archs]))


def mlp_ensemble(seed: int) -> MLPEnsemble:
    return MLPEnsemble(hidden=(64, 64, 64), steps=300, bootstrap=False, seed=seed)


def random_forest(seed: int) -> RandomForestRegressor:
    return RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1)


# name -> (model of a seed with `fit(x, y)` and `predict(x)` (a mean, or (mean, std)), its encoding)
PREDICTORS: dict[str, tuple[Callable[[int], object], str]] = {
    "gbt": (lambda seed: GBTPredictor(seed=seed), "path"),
    "mlp_ensemble": (mlp_ensemble, "path"),
    "mlp_ensemble_defaults": (lambda seed: MLPEnsemble(seed=seed), "path"),
    "gp": (lambda seed: GPPredictor(seed=seed), "path"),
    "random_forest": (random_forest, "onehot"),
}
#: the same with zero-cost proxies as features (and the proxy-free ones on the same splits)
WITH_PROXIES: dict[str, tuple[Callable[[int], object], str]] = {
    "gp+zc": (lambda seed: GPPredictor(seed=seed), "zc"),
    "mlp_ensemble+zc": (mlp_ensemble, "zc"),
    "gbt+zc": (lambda seed: GBTPredictor(seed=seed), "path+zc"),
    **{name: PREDICTORS[name] for name in ("gp", "mlp_ensemble", "gbt", "random_forest")},
}
ZC_SCORES = RESULTS / "zero_cost_nb201_scores.csv"


def split(n_archs: int, seed: int, held_out: int, pool: int) -> tuple[np.ndarray, np.ndarray]:
    """The indices of `held_out` architectures and, disjoint from them, a training pool of `pool`."""
    picked = np.random.default_rng(seed).choice(n_archs, held_out + pool, replace=False)
    return picked[:held_out], picked[held_out:]


def measure_seed(data: Data, seed: int, predictors: dict[str, tuple[Callable[[int], object], str]],
                 sizes: tuple[int, ...] = SIZES, held_out: int = HELD_OUT) -> dict[str, dict[int, tuple[float, float, float]]]:
    """(Spearman, Kendall tau, fit+predict seconds) of each predictor trained on the first `size` of
    the seed's pool, against the val_acc of the seed's held-out architectures."""
    test, pool = split(len(data.val_acc), seed, held_out, max(sizes))
    y_test = data.val_acc[test]
    out: dict[str, dict[int, tuple[float, float, float]]] = {}
    for name, (make, encoding) in predictors.items():
        x = data.encodings[encoding]
        out[name] = {}
        for size in sizes:
            train = pool[:size]
            started = time.perf_counter()
            with threadpool_limits(1):
                prediction = make(seed).fit(x[train], data.val_acc[train]).predict(x[test])
            seconds = time.perf_counter() - started
            mean = prediction[0] if isinstance(prediction, tuple) else prediction
            out[name][size] = (float(spearmanr(mean, y_test)[0]), float(kendalltau(mean, y_test)[0]), seconds)
    return out


_DATA: dict[tuple[Path, Path | None], Data] = {}  # one loaded table (and proxy cache) per process


def run_seed(table_path: Path, seed: int, sizes: tuple[int, ...],
             scores_path: Path | None = None) -> dict[str, dict[int, tuple[float, float, float]]]:
    """`measure_seed` of every predictor on the table at `table_path`, or with `scores_path` of those
    `WITH_PROXIES` on the cells with proxies, the rest of each seed's pool held out (a function of
    module level: it runs in workers)."""
    data = _DATA.get((table_path, scores_path)) or _DATA.setdefault((table_path, scores_path), load(table_path, scores_path))
    if scores_path is None:
        return measure_seed(data, seed, PREDICTORS, sizes)
    return measure_seed(data, seed, WITH_PROXIES, sizes, held_out=len(data.val_acc) - max(sizes))


def summarize(runs: list[dict[str, dict[int, tuple[float, float, float]]]], workers: int = 1,
              held_out: int = HELD_OUT) -> dict:
    """The results dict: per metric, predictor and training size (string keys), the mean over seeds."""
    encodings = {name: encoding for name, (_, encoding) in {**PREDICTORS, **WITH_PROXIES}.items() if name in runs[0]}
    results: dict = {"seeds": len(runs), "held_out": held_out, "workers": workers, "encodings": encodings}
    for k, metric in enumerate(("spearman", "kendall", "seconds")):
        values = {name: {str(size): [run[name][size][k] for run in runs] for size in runs[0][name]} for name in runs[0]}
        results[metric] = {name: {size: float(np.mean(v)) for size, v in row.items()} for name, row in values.items()}
        if metric != "seconds":
            results[f"{metric}_std"] = {name: {size: float(np.std(v)) for size, v in row.items()} for name, row in values.items()}
    return results


def report(results: dict) -> str:
    """The markdown table of a results dict (as `main` writes it)."""
    names = list(results["spearman"])
    sizes = list(results["spearman"][names[0]])
    header = ["predictor", "encoding", *(f"Spearman @{s}" for s in sizes), *(f"Kendall @{s}" for s in sizes),
              f"s fit+predict @{'/'.join(sizes)}"]
    body = [[name, results["encodings"][name],
             *(f"{results['spearman'][name][s]:.3f} ± {results['spearman_std'][name][s]:.3f}" for s in sizes),
             *(f"{results['kendall'][name][s]:.3f} ± {results['kendall_std'][name][s]:.3f}" for s in sizes),
             "/".join(f"{results['seconds'][name][s]:.2f}" for s in sizes)] for name in names]
    return markdown_table(header, body) + (
        f"\n\nMean ± std over {results['seeds']} seeds of the rank correlation between each predictor's mean "
        f"prediction and the true val_acc of {results['held_out']} held-out architectures, after training on "
        f"the first {'/'.join(sizes)} architectures of a disjoint pool; seconds: one fit plus one prediction "
        f"of the held-out set on one thread, mean over seeds ({results['workers']} process(es) side by side).")


def main() -> None:
    p = parser(__doc__.splitlines()[0], table=True)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--workers", type=int, default=1, help="processes running seeds side by side (one per core)")
    p.add_argument("--zc-scores", type=Path, default=ZC_SCORES, help="proxies per cell (zero_cost_nb201.py's cache)")
    args = p.parse_args()
    for name in ("seeds", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    seeds = 3 if args.quick else args.seeds
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        runs = pool.starmap(run_seed, [(args.table, seed, SIZES) for seed in range(seeds)])
        results = summarize(runs, args.workers)
        markdown = report(results)
        if args.zc_scores.is_file():
            runs = pool.starmap(run_seed, [(args.table, seed, SIZES, args.zc_scores) for seed in range(seeds)])
            held_out = len(read_scores(args.zc_scores)) - max(SIZES)
            results["with_proxies"] = summarize(runs, args.workers, held_out)
            markdown += "\n\nWith zero-cost proxies as features, on the cells with proxies:\n\n" + report(results["with_proxies"])
    publish("predictors_nb201", results, markdown, args.json, quick=args.quick)


if __name__ == "__main__":
    main()
