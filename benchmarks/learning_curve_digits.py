"""Learning-curve extrapolation on digits: do k epochs of a T-epoch run rank architectures by their final val_acc?

    python benchmarks/learning_curve_digits.py [--quick] [--json PATH]

N distinct random NB201 cells (channels 8, one cell per stage) are each trained the full T epochs once on
the embedded digits data (one CPU thread), recording the validation curve. The first k epochs of that
run are exactly what `LearningCurveEstimator` trains (same seed and cosine schedule over T; the script
checks it on the first architecture), so its prediction is computed from the recorded prefix. The target
is the final val_acc (best-validation epoch of the T). For each k, Spearman's rank correlation with the
target (with a 90 % bootstrap interval over architectures), the mean absolute error and the bias (mean
estimate minus target) of:

  extrapolated   LearningCurveEstimator's val_acc from k epochs (Domhan et al. 2015-style curve fit)
  observed       the best val_acc of those k epochs: the naive baseline, from the same epochs
  short run      TrainingEstimator at fidelity k: a separate k-epoch run, its cosine annealed over k
                 epochs (what multi-fidelity strategies such as Hyperband compare); same cost

`stop_below` is replayed on the recorded curves (exact, by the same prefix property) at thresholds
from the distribution of final val_acc (an oracle a search would replace by, e.g., its best so far),
for a few `min_epochs` and `margin`: the epochs run against N x T, how many candidates at or above the
threshold were wrongly stopped, and the regret (final val_acc of the true best minus that of the arch a
search would pick by the reported val_acc). Digits is split 40/40/20 % (train/validation/test) and
trained in batches of 32, so that the validation set (719 images) resolves architectures that all
end near 98 %.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from typing import Any

import numpy as np
import torch
from common import markdown_table, parser, publish
from scipy.stats import spearmanr

from nasforge.data import load_dataset
from nasforge.estimators.learning_curve import LearningCurveEstimator, extrapolate
from nasforge.estimators.training import TrainingEstimator
from nasforge.spaces import create_space

SEED = 0
SPACE_OPTIONS = {"channels": 8, "cells_per_stage": 1}
DATA_OPTIONS = {"val_fraction": 0.4, "test_fraction": 0.2}
BATCH_SIZE = 32


def settings(quick: bool) -> dict[str, Any]:
    """What is trained (a quick run trains less) and the stop_below settings replayed on it."""
    trained = {"archs": 10, "epochs": 10, "ks": [3, 5]} if quick else {"archs": 50, "epochs": 20, "ks": [3, 5, 8]}
    return trained | {"quantiles": [0.5, 0.75], "min_epochs": [3, 5], "margins": [0.0, 2.0]}


def predicted(values: list[float], horizon: int) -> float:
    """LearningCurveEstimator's val_acc from these epochs: the extrapolation, or the best observed if no fit."""
    prediction = extrapolate(values, horizon)
    return max(values) if prediction is None else prediction


def spearman_interval(values: list[float], finals: list[float], rounds: int = 1000) -> list[float]:
    """A 90 % bootstrap interval of Spearman's rho over resampled architectures (the same resamples for
    every estimate, so their intervals are comparable)."""
    rng = np.random.default_rng(SEED)
    x, y = np.asarray(values), np.asarray(finals)
    rhos = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample of all-equal values has no rank correlation: NaN, skipped
        for _ in range(rounds):
            i = rng.integers(0, len(x), len(x))
            rhos.append(spearmanr(x[i], y[i])[0])
    return [float(q) for q in np.nanquantile(rhos, [0.05, 0.95])]


def simulate_stop(curves: list[list[float]], finals: list[float], horizon: int, threshold: float, min_epochs: int,
                  margin: float) -> dict[str, Any]:
    """`stop_below=threshold` replayed on full curves: epochs run, wrong stops, regret of the pick."""
    epochs, reported = [], []
    for curve in curves:
        stop = next((e for e in range(min_epochs, horizon) if predicted(curve[:e], horizon) + margin < threshold), None)
        epochs.append(horizon if stop is None else stop)
        reported.append(max(curve) if stop is None else predicted(curve[:stop], horizon))
    good = [i for i, final in enumerate(finals) if final >= threshold]
    pick = max(range(len(curves)), key=lambda i: (reported[i], -i))
    return {"threshold": threshold, "min_epochs": min_epochs, "margin": margin, "epochs_run": sum(epochs),
            "epochs_full": horizon * len(curves), "saved": 1.0 - sum(epochs) / (horizon * len(curves)), "stopped": sum(e < horizon for e in epochs),
            "good": len(good), "good_stopped": sum(epochs[i] < horizon for i in good),
            "regret": max(finals) - finals[pick]}


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    torch.set_num_threads(1)
    s = settings(args.quick)
    horizon = s["epochs"]
    space = create_space("nb201", **SPACE_OPTIONS)
    data = load_dataset("digits", seed=SEED, **DATA_OPTIONS)

    def trainer() -> TrainingEstimator:
        return TrainingEstimator(space=space, data=data, epochs=horizon, batch_size=BATCH_SIZE, seed=SEED,
                                  threads=1, latency=False)

    rng = np.random.default_rng(SEED)
    archs: dict[str, Any] = {}
    while len(archs) < s["archs"]:
        arch = space.sample(rng)
        archs.setdefault(arch.key, arch)
    load_before = os.getloadavg()
    rows = []
    for i, arch in enumerate(archs.values()):
        tick = time.perf_counter()
        full = trainer().evaluate(arch)
        short = {k: trainer().evaluate(arch, k).metrics["val_acc"] for k in s["ks"]}
        rows.append({"key": arch.key, "curve": [row["val_acc"] for row in full.curve], "final": full.metrics["val_acc"],
                     "short_run": short, "seconds": time.perf_counter() - tick})
        print(f"{i + 1}/{len(archs)} final {full.metrics['val_acc']:.2f} ({rows[-1]['seconds']:.0f} s)", flush=True)

    # the prefix property the whole comparison rests on, checked on the first architecture
    first = next(iter(archs.values()))
    k = s["ks"][0]
    check = LearningCurveEstimator(trainer(), min_epochs=k).evaluate(first, k).metrics["val_acc"]
    assert check == predicted(rows[0]["curve"][:k], horizon), "the estimator's prediction differs from the prefix's"

    curves, finals = [r["curve"] for r in rows], [r["final"] for r in rows]
    ranking = []
    for k in s["ks"]:
        estimates = {"extrapolated": [predicted(c[:k], horizon) for c in curves],
                     "observed": [max(c[:k]) for c in curves],
                     "short run": [r["short_run"][k] for r in rows]}
        for method, values in estimates.items():
            ranking.append({"k": k, "method": method, "spearman": float(spearmanr(values, finals)[0]),
                            "spearman_90": spearman_interval(values, finals),
                            "mae": statistics.fmean(abs(v - f) for v, f in zip(values, finals)),
                            "bias": statistics.fmean(v - f for v, f in zip(values, finals))})
    stopping = [simulate_stop(curves, finals, horizon, float(np.quantile(finals, q)), m, margin) | {"quantile": q}
                for q in s["quantiles"] for m in s["min_epochs"] for margin in s["margins"]]

    table = markdown_table(["k / T epochs", "estimate", "Spearman vs final", "90 % bootstrap", "MAE (pp)", "bias (pp)"], [
        [f"{r['k']} / {horizon}", r["method"], f"{r['spearman']:.3f}", "{:.2f} to {:.2f}".format(*r["spearman_90"]),
         f"{r['mae']:.2f}", f"{r['bias']:+.2f}"] for r in ranking])
    table += "\n\n" + markdown_table(
        ["stop_below (quantile of final)", "min_epochs", "margin", "epochs run", "saved", "stopped", "wrongly stopped (final >= threshold)",
         "regret of the pick (pp)"],
        [[f"{r['threshold']:.2f} (q{r['quantile']:g})", r["min_epochs"], f"{r['margin']:g}", f"{r['epochs_run']} / {r['epochs_full']}",
          f"{100 * r['saved']:.0f} %", f"{r['stopped']} / {len(rows)}", f"{r['good_stopped']} / {r['good']}",
          f"{r['regret']:.2f}"] for r in stopping])
    table += (f"\n\n{len(rows)} NB201 cells ({SPACE_OPTIONS}), digits split {DATA_OPTIONS}, batch "
              f"{BATCH_SIZE}, T = {horizon} epochs; final val_acc {min(finals):.2f} to {max(finals):.2f} (median "
              f"{statistics.median(finals):.2f}); {statistics.fmean(r['seconds'] for r in rows):.1f} s per arch (T + short runs).")
    results = {"settings": s | {"seed": SEED, "space_options": SPACE_OPTIONS, "data_options": DATA_OPTIONS,
                                "batch_size": BATCH_SIZE},
               "ranking": ranking, "stop_below": stopping,
               # other processes on the machine: the 1-minute load average before and after the run
               "load_average": [load_before[0], os.getloadavg()[0]], "archs": rows}
    publish("learning_curve_digits", results, table, args.json, quick=args.quick)


if __name__ == "__main__":
    main()
