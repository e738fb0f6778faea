"""One-shot NAS on NAS-Bench-201: DARTS (first order, with and without the DARTS- defence), GDAS,
SPOS + evolution and ENAS search a small supernet on CIFAR-10 images; the derived architecture is looked
up in the NAS-Bench-201 table (val / test accuracy, percentile = percent of the table's architectures with
a lower val_acc), with the search's wall time.

    python benchmarks/oneshot_nb201.py [--quick] [--json PATH] [--table PATH] [--data PATH] [--seeds 2] [--workers 1]
                                       [--first-seed 0] [--methods darts,spos,...] [--update]

CPU-sized, as the issue asks: supernet C=8 (DARTS' mixed steps are 2.5 times faster than at C=16: more
steps per CPU-minute), one cell per stage; ../shared/data/cifar10_train10k.npz split (seed 0, stratified)
into 4,500 training and 4,500 validation images (1,000 more held out, unused); batch 64; weights SGD lr
0.025 -> 0.001 cosine, momentum 0.9, wd 3e-4. Epochs are sized so that each run takes a few CPU-minutes
(`EPOCHS`): DARTS 12 epochs, about 850 steps against the paper's ~20,000, so its schedule is compressed
(benchmark settings; the library keeps the paper's defaults): two weights-only warm-up epochs
(`warmup_epochs`, as the NB201 and DARTS- code bases warm up), then the alphas' Adam at lr 0.03, 100 times
the paper's 3e-4; the same for DARTS- (`auxskip`) and beta-DARTS (`beta`, its default final weight 1).
GDAS: 20 epochs, 10 of them warm-up, alpha lr 0.03, tau 10 -> 0.1 over the epochs (`gdas-beta`: with
beta-DARTS' regularisation). SPOS: 150 epochs (one path per step; about twice DARTS' CPU-minutes), then
30 candidates of regularized evolution (population 10, sample 3); ENAS: 7 epochs, 10 controller samples.
Every candidate inherits the supernet's weights, BatchNorm recalibrated on 512 training images, scored on
all 4,500 validation images. These settings were chosen on tuning seeds (100, 101; `--first-seed`), except
the scoring on all validation images (before: the first 1,000), chosen after the reported seeds 0 and 1
(see the outcome). Each run is one process on one thread; `--workers` run side by side; `--update` reruns
the given methods and seeds and keeps the other published runs.
`--quick`: one seed, 1,000 training / validation images, one epoch per method after its warm-up, 10 SPOS
candidates. Each run's `peak skip share` is the collapse monitor's largest share of skip edges in the
derived cell at the end of any epoch.

Outcome (results/oneshot_nb201.md; `--seeds 3 --workers 2`, 48 min, then SPOS and ENAS rerun with
`--methods spos,enas --seeds 3 --workers 2 --update`, 45 min; 1-24 min of wall time per run):
- DARTS with the DARTS- defence derives top-5 % cells on all three seeds (99.7th, 99.9th and 97.3rd
  percentile; test 88.05 / 88.71 / 88.10 %), each with skip_connect on edge 0->3 (as 82 % of
  the table's top 5 % have) and 3x3 convolutions on 3 or 4 of the other 5 edges. beta-DARTS does so on one seed of three (98.9th; then 54.3rd and
  67.6th, all-convolution cells that lose the skip on 0->3); on the tuning seeds it had reached the top 5 %
  four times of four (weights 0.3 and 3, 6 epochs).
- Plain DARTS: 99.4th, 83.0th and 100.0th percentile (seed 2: val 84.75 %, the table's best being 84.89 %).
  The collapse to skip connections is not reproduced on the reported seeds at this budget. The monitor
  shows seed 0's derived cell at 5 skip edges of 6 after epoch 7, back to 2 by epoch 8. On the tuning seeds
  it did collapse: seed 101 (12 epochs) rose from 1 skip edge to 4-5 from epoch 6 on and ended at the 28th
  percentile; seed 100 (6 epochs) held 4-5 and ended at the 31st. DARTS- and beta-DARTS never exceeded 3.
- SPOS + evolution, 150 epochs: 99.7th (test 88.56 %, in the top 5 %), 91.1st and 52.2nd percentile. The
  supernet's training length decides: at 50 epochs (45 % training accuracy) inherited scores favoured
  parameter-free cells (Kendall tau of the conv count with the score -0.18 on 60 cells, tuning seed 100)
  and the picks were the 39.4th, 10.4th and 92.2nd; at 150 epochs (63 %) that bias turns positive (+0.37,
  +0.44) and the ranking of 60 cells reaches Kendall tau 0.41 on both tuning seeds, whose picks were the
  98.0th and 97.3rd. On the reported seeds the first 150-epoch run scored candidates on 1,000 validation
  images and picked the 93.8th and 89.7th (seeds 0, 1; seed 2 was not run); the best ten inherited scores span
  1.3 points, less than the 1.5-point binomial noise of 1,000 images, so candidates are now scored on all
  4,500 (tuning seeds: 98.0th and 99.3rd), which turned seed 0 into the 99.7th and seed 1 into the 91.1st.
- GDAS derives pool- and skip-heavy cells (2.4th, 18.7th, 20.9th percentile); with beta-DARTS'
  regularisation 30.5th, 49.9th and 94.0th. Its alphas barely move (mean entropy 1.60 of at most 1.61
  until the last epochs) and the derived cell changes from epoch to epoch: one sampled op per edge per step
  gives alpha a gradient too noisy for 700 steps, and the cell is settled by the last low-temperature
  epochs. On the tuning seeds none of these helped: 50 epochs (21.8th), 40 epochs with beta (50.8th),
  supernet BatchNorms without scale and shift (`bn_affine: false`, as NAS-Bench-201's search code; the
  alphas do commit, entropy 1.25-1.30, but to skip and pool: 2.4th on both seeds; with DARTS-'s auxiliary
  skip added to the sampled path, 2.4th and 15.9th), or 10 GDAS epochs started from the 150-epoch SPOS
  supernet above (24.8th).
- ENAS: 58.4th, 69.4th, 14.0th (scored on 1,000 images: 78.5th, 69.4th, 14.0th).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import DEFAULT_DATA, RESULTS, markdown_table, parser, publish

from nasforge.data import load_dataset
from nasforge.objective import Objective
from nasforge.oneshot import SupernetEstimator, create_method
from nasforge.oneshot.trainer import Listed
from nasforge.spaces.nb201 import NB201Space, parse_arch

#: method -> (one-shot method, its options); DARTS and GDAS: alpha frozen for the first epochs (warm-up)
METHODS = {
    "darts": ("darts", {"alpha_lr": 0.03, "warmup_epochs": 2}),
    "darts-auxskip": ("darts", {"alpha_lr": 0.03, "warmup_epochs": 2, "defence": "auxskip"}),
    "darts-beta": ("darts", {"alpha_lr": 0.03, "warmup_epochs": 2, "defence": "beta"}),
    "gdas": ("gdas", {"alpha_lr": 0.03, "warmup_epochs": 10}),
    "gdas-beta": ("gdas", {"alpha_lr": 0.03, "warmup_epochs": 10, "defence": "beta"}),
    "spos": ("spos", {"population_size": 10, "sample_size": 3}),
    "enas": ("enas", {"derive_samples": 10}),
}
#: supernet epochs of each method in a full run (4,500 images an epoch): a few minutes each on one core
EPOCHS = {"darts": 12, "darts-auxskip": 12, "darts-beta": 12, "gdas": 20, "gdas-beta": 20, "spos": 150, "enas": 7}
SPOS_CANDIDATES = 30
#: validation images each candidate is scored on with inherited weights: all of them (on 1,000 the binomial
#: noise, 1.5 points, was larger than the spread of the best ten inherited scores of a 150-epoch supernet)
EVAL_IMAGES = 4500
CHANNELS = 8


def read_table(path: Path) -> dict[str, tuple[float, float]]:
    with path.open() as f:
        return {row["arch"]: (float(row["val_acc"]), float(row["test_acc"])) for row in csv.DictReader(f)}


def load_data(path: Path, *, quick: bool):
    """The seed-0 45 / 45 / 10 split; 1,000 training and validation images if `quick`."""
    data = load_dataset(str(path), seed=0, val_fraction=0.45, test_fraction=0.1)
    if quick:
        return replace(data, x_train=data.x_train[:1000], y_train=data.y_train[:1000],
                       x_val=data.x_val[:1000], y_val=data.y_val[:1000])
    return data


def search(method: str, seed: int, data_path: Path, quick: bool, channels: int = CHANNELS) -> dict:
    """One search: train the supernet, score the method's proposals with inherited weights, keep the best."""
    torch.set_num_threads(1)
    data = load_data(data_path, quick=quick)
    space = NB201Space(channels=channels, cells_per_stage=1)
    name, options = METHODS[method]
    start = time.perf_counter()
    trainer = create_method(name, space=space, data=data, seed=seed, epochs=1 + options.get("warmup_epochs", 0) if quick else EPOCHS[method],
                            batch_size=64, **options)
    log = trainer.fit()
    strategy = trainer.proposals(Objective("val_acc"))
    estimator = SupernetEstimator(supernet=trainer.supernet, data=data, calibration_images=512, eval_images=EVAL_IMAGES)
    count = len(strategy.archs) if isinstance(strategy, Listed) else (10 if quick else SPOS_CANDIDATES)
    best, best_acc = None, -np.inf
    for _ in range(count):
        arch = strategy.ask()
        result = estimator.evaluate(arch)
        strategy.tell(arch, result)
        if result.metrics["val_acc"] > best_acc:
            best, best_acc = arch, result.metrics["val_acc"]
    return {"method": method, "seed": seed, "arch": best.key, "seconds": time.perf_counter() - start,
            "inherited_val_acc": best_acc, "log": log}


def _search(job: tuple) -> dict:
    return search(*job)


def main() -> None:
    p = parser(__doc__.splitlines()[0], table=True)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CIFAR-10 .npz (x, y)")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0, help="seeds run from here (settings were tuned on 100, 101)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ", ".join(METHODS))
    p.add_argument("--update", action="store_true",
                   help="keep the published runs of other methods and seeds (results/oneshot_nb201.json), replace these")
    args = p.parse_args()
    table = read_table(args.table)
    vals = np.array([v for v, _ in table.values()])
    seeds = range(args.first_seed, args.first_seed + (1 if args.quick else args.seeds))
    jobs = [(m, s, args.data, args.quick) for s in seeds for m in args.methods.split(",")]
    published = RESULTS / ("oneshot_nb201_quick.json" if args.quick else "oneshot_nb201.json")
    runs, logs = kept_runs(published, {f"{m}/{s}" for m, s, *_ in jobs}) if args.update else ([], {})
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for done, f in enumerate(pool.imap_unordered(_search, jobs), 1):  # written as runs finish: a long run keeps its partial table
            val, test = table[f["arch"]]
            runs.append({"method": f["method"], "seed": f["seed"], "arch": f["arch"], "val_acc": val, "test_acc": test,
                         "percentile": 100.0 * float((vals < val).mean()), "seconds": f["seconds"],
                         "inherited_val_acc": f["inherited_val_acc"], "peak_skip_share": peak_skip_share(f["log"])})
            logs[f"{f['method']}/{f['seed']}"] = f["log"]
            runs.sort(key=lambda r: (list(METHODS).index(r["method"]), r["seed"]))
            publish("oneshot_nb201", {"runs": runs, "logs": logs, "table_best_val": float(vals.max())},
                    report(runs, len(vals)), args.json, quick=args.quick, echo=done == len(jobs))


def kept_runs(published: Path, rerun: set[str]) -> tuple[list[dict], dict[str, list]]:
    """The runs and logs of a published results file but those of the `rerun` "method/seed" keys (none if
    there is no file yet): `--update` reruns some methods or seeds and keeps the rest of the table."""
    if not published.exists():
        return [], {}
    kept = json.loads(published.read_text())
    return ([r for r in kept["runs"] if f"{r['method']}/{r['seed']}" not in rerun],
            {key: log for key, log in kept["logs"].items() if key not in rerun})


def peak_skip_share(log: list[dict]) -> float | None:
    """The largest share of skip_connect edges the derived cell had at the end of any epoch (the collapse
    monitor's), None for methods that derive no cell while training."""
    shares = [row["skip_share"] for row in log if "skip_share" in row]
    return max(shares) if shares else None


def report(runs: list[dict], table_size: int) -> str:
    def ops_share(arch: str, word: str) -> float:
        ops = parse_arch(arch)
        return sum(word in op for op in ops) / len(ops)

    rows = [[r["method"], r["seed"], f"{r['val_acc']:.2f}", f"{r['test_acc']:.2f}", f"{r['percentile']:.1f}",
             f"{ops_share(r['arch'], 'skip'):.2f}", "-" if r.get("peak_skip_share") is None else f"{r['peak_skip_share']:.2f}",
             f"{ops_share(r['arch'], 'pool'):.2f}", f"{r['seconds']:.0f}", f"`{r['arch']}`"] for r in runs]
    per_method = []
    for method in dict.fromkeys(r["method"] for r in runs):
        mine = [r for r in runs if r["method"] == method]
        per_method.append([method, len(mine), f"{np.mean([r['test_acc'] for r in mine]):.2f}",
                           f"{np.mean([r['percentile'] for r in mine]):.1f}",
                           f"{sum(r['percentile'] >= 95 for r in mine)}/{len(mine)}",
                           f"{np.mean([ops_share(r['arch'], 'skip') for r in mine]):.2f}",
                           f"{np.mean([r['seconds'] for r in mine]):.0f}"])
    return (markdown_table(["method", "seeds", "mean test_acc", "mean percentile", "top 5 %", "skip share", "seconds"], per_method)
            + f"\n\nPer run (percentile among the table's {table_size} architectures by val_acc):\n\n"
            + markdown_table(["method", "seed", "val_acc", "test_acc", "percentile", "skip share", "peak skip share",
                              "pool share", "seconds", "arch"], rows))


if __name__ == "__main__":
    main()
