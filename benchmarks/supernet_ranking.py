"""How well an SPOS-trained NB201 supernet ranks architectures: 100 random cells inherit its weights,
BatchNorm recalibrated, scored on validation images; Kendall tau and Spearman rho of those scores with
the NAS-Bench-201 table's val_acc (published for NAS-Bench-201 supernets: Kendall tau about 0.5).

    python benchmarks/supernet_ranking.py [--quick] [--json PATH] [--table PATH] [--data PATH] [--epochs 150] [--archs 100]
                                          [--channels 8] [--sampling uniform|fair]

The data are oneshot_nb201.py's: 4,500 training images of ../shared/data/cifar10_train10k.npz (seed-0
split; 4,500 validation images); the supernet oneshot_nb201's SPOS one (C=8, one cell per stage, 150
epochs), trained with uniform single-path steps (`--sampling fair`: FairNAS' strictly fair steps, five
paths that use every op of every edge once, gradients accumulated; written to
results/supernet_ranking_fair.*), batch 64, SGD 0.025 -> 0.001 cosine, one torch thread. Each cell:
BatchNorm recalibrated on 512 training images, accuracy on all 4,500 validation images (oneshot_nb201's
scoring). Cells are drawn uniformly (seed 0), so some have no path from input to output, as in the table.
Rank statistics: scipy.stats.kendalltau (tau-b, ties counted) and spearmanr; the conv-count column is
Kendall tau of each cell's number of conv edges with its inherited score (with the table's val_acc in
brackets): negative means the supernet favours parameter-free cells. `--quick`: 1,000 training images,
2 epochs, 20 cells.

Outcome (results/supernet_ranking.md; 150 epochs, 29 min, partly beside other jobs): Kendall tau 0.496,
Spearman 0.683 - the published ~0.5. The final training accuracy of the sampled paths is 63 %, and the
inherited scores rise with the number of convolutions (conv-count tau +0.30; the table's +0.39). The
training length is what decides: an earlier run of 30 epochs at C=16 (41 % training accuracy) gave
Kendall tau -0.08, its scores favouring cells with few convolutions (conv-count tau -0.33), because each
shared conv trains on a fifth of the steps while the stem and reductions train on all of them. On
oneshot_nb201's tuning seeds, 60 cells gave tau 0.10 after 50 epochs and 0.41 after 150. FairNAS' strict
fairness did not remove the short-training bias (results/supernet_ranking_fair.md, C=16, `--sampling fair
--epochs 6`, the path steps of 30 uniform epochs): Kendall tau 0.003, conv-count tau -0.23.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from common import DEFAULT_DATA, markdown_table, parser, publish
from oneshot_nb201 import CHANNELS, EVAL_IMAGES, load_data, read_table
from scipy.stats import kendalltau, spearmanr

from nasforge.oneshot import SupernetEstimator, create_method
from nasforge.oneshot.spos import SAMPLING
from nasforge.spaces.nb201 import NB201Space, parse_arch


def rank(data, table: dict[str, tuple[float, float]], *, epochs: int, count: int, sampling: str = "uniform",
         channels: int = CHANNELS) -> dict:
    """Train the SPOS supernet, score `count` random cells with inherited weights, rank them against the table."""
    torch.set_num_threads(1)
    space = NB201Space(channels=channels, cells_per_stage=1)
    start = time.perf_counter()
    spos = create_method("spos", space=space, data=data, epochs=epochs, batch_size=64, seed=0, sampling=sampling)
    log = spos.fit()
    trained = time.perf_counter() - start
    estimator = SupernetEstimator(supernet=spos.supernet, data=data, calibration_images=512, eval_images=EVAL_IMAGES)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(count)]
    inherited = [estimator.evaluate(arch).metrics["val_acc"] for arch in archs]
    truth = [table[arch.key][0] for arch in archs]
    convs = [sum("conv" in op for op in parse_arch(arch.key)) for arch in archs]
    return {"kendall": float(kendalltau(inherited, truth).statistic), "spearman": float(spearmanr(inherited, truth).statistic),
            "conv_kendall": float(kendalltau(convs, inherited).statistic), "table_conv_kendall": float(kendalltau(convs, truth).statistic),
            "n": count, "epochs": epochs, "channels": channels, "sampling": sampling, "train_seconds": trained, "score_seconds": time.perf_counter() - start - trained,
            "final_train_acc": log[-1]["train_acc"],
            "archs": [{"arch": a.key, "inherited_val_acc": i, "table_val_acc": t} for a, i, t in zip(archs, inherited, truth)]}


def main() -> None:
    p = parser(__doc__.splitlines()[0], table=True)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CIFAR-10 .npz (x, y)")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--channels", type=int, default=CHANNELS, help="the supernet's C (oneshot_nb201.py's)")
    p.add_argument("--archs", type=int, default=100)
    p.add_argument("--sampling", choices=SAMPLING, default="uniform",
                   help="SPOS' path sampling; fair writes results/supernet_ranking_fair.*")
    args = p.parse_args()
    epochs, count = (2, 20) if args.quick else (args.epochs, args.archs)
    data = load_data(args.data, quick=args.quick)
    results = rank(data, read_table(args.table), epochs=epochs, count=count, sampling=args.sampling, channels=args.channels)
    tau, rho, log_acc, trained = results["kendall"], results["spearman"], results["final_train_acc"], results["train_seconds"]
    rows = [[count, args.sampling, args.channels, epochs, f"{tau:.3f}", f"{rho:.3f}", "~0.5",
             f"{results['conv_kendall']:.2f} ({results['table_conv_kendall']:.2f})", f"{log_acc:.1f}", f"{trained:.0f}",
             f"{results['score_seconds']:.0f}"]]
    publish("supernet_ranking" + ("" if args.sampling == "uniform" else f"_{args.sampling}"), results,
            markdown_table(["cells", "sampling", "C", "supernet epochs", "Kendall tau", "Spearman rho", "published tau",
                            "conv count tau: inherited (table)",
                            "final train acc %", "train s", "scoring s"], rows), args.json, quick=args.quick)


if __name__ == "__main__":
    main()
