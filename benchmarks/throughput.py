"""Training throughput (images/s of forward + backward + SGD step) of networks built by nasforge
against the same networks written by hand in plain PyTorch (`reference_nets.py`).

    python benchmarks/throughput.py [--quick] [--json PATH]

Both twins start from the same weights (copied by position) and train on the same fixed batch with
the same optimizer and torch thread count (`--threads`, default torch's). After warm-up steps, timed
rounds alternate the two (A B A B ...), one training step each, so that machine noise hits both
alike. img/s columns are medians over rounds; `ratio` is the median of the per-round ratios
nasforge/plain (paired: a slow patch of the machine cancels out). The requirement is ratio >= 0.95;
judge it on a full run (15 rounds) on an otherwise idle machine: `--quick` times 3 rounds, too few
to resolve 5%. The JSON records the machine's load average before and after the run.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from common import markdown_table, parser, publish
from nasforge.spaces import create_space
from nasforge.spaces.darts import GENOTYPES
from reference_nets import copy_weights, darts_net, mobilenet_net, nb201_net

NUM_CLASSES = 10
ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
MIXED = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"  # best val_acc
WITH_NONE = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
# A MobileNetV3-Large-like assignment of the space's options (the paper's 2.3/2.5 expansions -> 3).
V3_LIKE = {"width": 1.0, "stages": [
    [{"k": 3, "e": 4, "se": False, "act": "relu"}, {"k": 3, "e": 3, "se": False, "act": "relu"}],
    [{"k": 5, "e": 3, "se": True, "act": "relu"}] * 3,
    [{"k": 3, "e": 6, "se": False, "act": "hswish"}] + [{"k": 3, "e": 3, "se": False, "act": "hswish"}] * 3,
    [{"k": 3, "e": 6, "se": True, "act": "hswish"}] * 2,
    [{"k": 5, "e": 6, "se": True, "act": "hswish"}] * 3,
]}


@dataclass(frozen=True)
class Case:
    """One network to time: its space (and space options), arch JSON, input shape and batch size."""

    space: str
    label: str
    arch: Any
    input_shape: tuple[int, int, int]
    batch: int
    options: tuple[tuple[str, Any], ...] = ()

    def twins(self) -> tuple[nn.Module, nn.Module]:
        """The nasforge network and its plain twin, holding the same weights."""
        space = create_space(self.space, **dict(self.options))
        ours = space.build(space.validate(self.arch), self.input_shape, NUM_CLASSES)
        kw = dict(self.options)
        in_ch = self.input_shape[0]
        if self.space == "nb201":
            plain = nb201_net(self.arch, kw.get("channels", 16), kw.get("cells_per_stage", 5), in_ch, NUM_CLASSES)
        elif self.space == "darts":
            plain = darts_net(self.arch, kw.get("channels", 16), kw.get("cells", 8), in_ch, NUM_CLASSES)
        else:
            plain = mobilenet_net(self.arch, in_ch, NUM_CLASSES)
        copy_weights(ours, plain)
        return ours, plain


def cases(quick: bool) -> list[Case]:
    sampled = create_space("mobilenet").sample(np.random.default_rng(0)).value
    nb201 = [("all nor_conv_3x3", ALL_CONV), ("mixed", MIXED), ("best val", BEST), ("with none", WITH_NONE)]
    darts_opts = (("channels", 16), ("cells", 8))
    full = [Case("nb201", label, arch, (3, 32, 32), 64, (("channels", 16), ("cells_per_stage", 5))) for label, arch in nb201]
    full += [Case("darts", "DARTS_V2", GENOTYPES["DARTS_V2"], (3, 32, 32), 32, darts_opts),
             Case("mobilenet", "sampled (seed 0)", sampled, (3, 96, 96), 32),
             Case("mobilenet", "V3-like", V3_LIKE, (3, 96, 96), 32)]
    return [full[1], full[4], full[5]] if quick else full


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def _timer(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[int], float]:
    """A function running n training steps of `model` and returning the wall seconds they took."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            _train_step(model, optimizer, x, y)
        return time.perf_counter() - start

    return run


def measure(case: Case, warmup: int, rounds: int) -> dict[str, Any]:
    """Median img/s of both twins over `rounds` interleaved rounds of one step each, after `warmup` steps each."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(case.batch, *case.input_shape, generator=generator)
    y = torch.randint(NUM_CLASSES, (case.batch,), generator=generator)
    ours, plain = case.twins()
    params = sum(p.numel() for p in ours.parameters())
    run_ours, run_plain = _timer(ours, x, y), _timer(plain, x, y)
    run_ours(warmup)
    run_plain(warmup)
    seconds_ours, seconds_plain = [], []
    for _ in range(rounds):
        seconds_ours.append(run_ours(1))
        seconds_plain.append(run_plain(1))
    return {
        "space": case.space, "arch": case.label, "arch_json": case.arch, "input_shape": list(case.input_shape),
        "batch": case.batch, "params": params, "warmup_steps": warmup, "rounds": rounds,
        "nasforge_img_s": case.batch / statistics.median(seconds_ours),
        "plain_img_s": case.batch / statistics.median(seconds_plain),
        "ratio": statistics.median(p / o for o, p in zip(seconds_ours, seconds_plain)),
        "nasforge_step_s": seconds_ours, "plain_step_s": seconds_plain,
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads for both twins")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    warmup, rounds = (1, 3) if args.quick else (3, 15)
    load_before = os.getloadavg()
    rows = []
    for case in cases(args.quick):
        rows.append(measure(case, warmup, rounds))
        r = rows[-1]
        print(f"{r['space']} {r['arch']}: {r['nasforge_img_s']:.1f} vs {r['plain_img_s']:.1f} img/s, ratio {r['ratio']:.3f}",
              flush=True)
    header = ["space", "arch", "input shape", "batch", "nasforge img/s", "plain img/s", "ratio"]
    table = markdown_table(header, [
        [r["space"], r["arch"], "x".join(map(str, r["input_shape"])), r["batch"], f"{r['nasforge_img_s']:.1f}",
         f"{r['plain_img_s']:.1f}", f"{r['ratio']:.3f}"] for r in rows])
    results = {"torch_threads": torch.get_num_threads(), "torch": torch.__version__, "requirement": "ratio >= 0.95",
               "min_ratio": min(r["ratio"] for r in rows),
               # other processes on the machine: the 1-minute load average before and after the run
               "load_average": [load_before[0], os.getloadavg()[0]], "rows": rows}
    publish("throughput", results, table, args.json, quick=args.quick)


if __name__ == "__main__":
    main()
