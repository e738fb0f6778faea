"""Cost of a supernet training step against standalone networks: time and peak memory of one DARTS
step (mixed ops) against the sum of the standalone networks of each candidate op, and of one SPOS
(single-path) step and of one ProxylessNAS step (binary gates on one sampled path) against the standalone
subnet of the same path. Targets from the issue: DARTS <= 1.15x the sum, single path <= 1.3x one subnet, in
time and memory.

    python benchmarks/supernet_cost.py [--quick] [--json PATH] [--repeats 10] [--paths 3]

Network: the NB201 supernet of the benchmarks (C=16, one cell per stage, 32x32x3 inputs, 10 classes),
batch 64. A step is forward, cross-entropy, backward and an SGD step (DARTS' weight step: softmax(alpha)
held fixed; its alpha step is a second pass of the same size). The standalone network of op k has op k
on all six edges (`none` included: its network still runs stem, reductions and head).

ProxylessNAS runs on the MobileNet supernet (ProxylessNAS' own block choices, kernel 3/5/7 x expansion 3/6,
stage depths 2-4, widths 24-160, width 1.0; 32x32x3 inputs, batch 64). Its step is the gated single pass:
forward through the sampled path with the straight-through binary gates of softmax(alpha), cross-entropy
plus 0.01 x the exact expected latency (per-unit MFLOPs standing in for a lookup table: the arithmetic is
the same), backward to the weights and alpha, an SGD step and an Adam step (the method alternates a plain
weight step and such an alpha step; both have this size or less).

Time: CPU time of the process (`time.process_time`) with one torch thread, median of `--repeats` steps
after two warm-up steps — on a machine shared with other jobs, wall time mostly measures the waits.
Memory: torch has no allocator statistics on the CPU (`torch.cuda.max_memory_allocated` is CUDA only,
and tracemalloc does not see torch's allocations), so each network is measured in a fresh subprocess
as the rise of its peak resident set size (`ru_maxrss`) over the first step, from the state just before
it (model, optimiser and batch built): parameters' gradients, activations and momentum buffers.

Outcome (results/supernet_cost.md): a DARTS step costs 0.61x the time and 0.65x the peak memory of the
five single-op networks together (they repeat the stem, reductions and head five times; the mixed op
skips computing `none`), within the 1.15x target; an SPOS step costs 1.03x the time and 0.99x the memory of
its standalone subnet (mean of 3 paths; 0.86-1.12x and 0.91-1.15x per path), and a ProxylessNAS step 0.99x
the time and 0.93x the memory of its MobileNet subnet (mean of 3 paths; 0.71-1.27x and 0.91-0.95x per path:
the per-path time spread is the shared machine's noise), within 1.3x.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from common import markdown_table, parser, publish

from nasforge.hardware import count_flops
from nasforge.spaces.mobilenet import MobileNetSpace
from nasforge.spaces.nb201 import NB201_OPS, NB201Space

SPACE = NB201Space(channels=16, cells_per_stage=1)
MOBILE = MobileNetSpace(kernels=(3, 5, 7), expansions=(3, 6), se=(False,), acts=("relu",), width_mults=(1.0,))
SHAPE, CLASSES, BATCH = (3, 32, 32), 10, 64


def measure(kind: str, ops: list[int], repeats: int) -> dict:
    """Build one network in this (fresh) process and measure its step: {'seconds', 'peak_mb'}."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if kind == "darts":
        net = SPACE.supernet(SHAPE, CLASSES)
        weights = torch.softmax(1e-3 * torch.randn(6, len(NB201_OPS)), -1)
        forward = lambda x: net(x, weights=weights)  # noqa: E731
    elif kind == "spos":
        net = SPACE.supernet(SHAPE, CLASSES)
        forward = lambda x: net(x, path=ops)  # noqa: E731
    elif kind == "proxyless":
        net = MOBILE.supernet(SHAPE, CLASSES)
        costs = net.unit_costs(lambda chain: [count_flops(m, s) / 1e6 for m, s in zip(chain, _shapes(chain))])
        alpha = torch.zeros(len(net.sizes), max(net.sizes), requires_grad=True)
        alpha_optimizer = torch.optim.Adam([alpha], lr=1e-3, betas=(0.0, 0.999))
        hot = F.one_hot(torch.tensor(ops), alpha.shape[1]).float()

        def forward(x: torch.Tensor) -> torch.Tensor:
            p = torch.softmax(alpha.masked_fill(~net.derivable, -torch.inf), -1)
            forward.extra = 0.01 * net.expected_cost(p, *costs)
            return net(x, weights=hot + hot * (p - p.detach()), path=ops)
    else:  # the standalone network of the cell `ops` (of the MobileNet arch `ops` for "mobilenet")
        net = (MOBILE if kind == "mobilenet" else SPACE).build((MOBILE if kind == "mobilenet" else SPACE).decode(ops), SHAPE, CLASSES)
        forward = net
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(BATCH, *SHAPE), torch.randint(0, CLASSES, (BATCH,))

    def step() -> None:
        loss = F.cross_entropy(forward(x), y)
        if kind == "proxyless":
            loss = loss + forward.extra
            alpha_optimizer.zero_grad(set_to_none=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if kind == "proxyless":
            alpha_optimizer.step()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # ru_maxrss is in KiB on Linux
    step()
    times = []
    for _ in range(repeats):
        tick = time.process_time()
        step()
        times.append(time.process_time() - tick)
    return {"seconds": statistics.median(times), "peak_mb": peak_mb}


def _shapes(chain: torch.nn.Sequential) -> list[tuple[int, ...]]:
    """The per-sample input shape of each layer of a chain on a (1, *SHAPE) input."""
    shapes, x = [], torch.zeros(1, *SHAPE)
    with torch.no_grad():
        for layer in chain.eval():
            shapes.append(tuple(x.shape[1:]))
            x = layer(x)
    return shapes


def fresh(kind: str, ops: list[int], repeats: int) -> dict:
    """`measure` in a new interpreter, so that its peak resident set is its own."""
    out = subprocess.run([sys.executable, __file__, "--measure", kind, ",".join(map(str, ops)), str(repeats)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        kind, ops, repeats = sys.argv[2], [int(o) for o in sys.argv[3].split(",")], int(sys.argv[4])
        print(json.dumps(measure(kind, ops, repeats)))
        return
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--paths", type=int, default=3, help="random paths for the single-path comparison")
    args = p.parse_args()
    repeats, n_paths = (3, 1) if args.quick else (args.repeats, args.paths)
    darts = fresh("darts", [0] * 6, repeats)
    singles = {op: fresh("standalone", [k] * 6, repeats) for k, op in enumerate(NB201_OPS)}
    total = {m: sum(s[m] for s in singles.values()) for m in ("seconds", "peak_mb")}
    rng = np.random.default_rng(0)
    paths = [[int(i) for i in rng.integers(1, len(NB201_OPS), 6)] for _ in range(n_paths)]  # no `none`: real subnets
    spos = [(fresh("spos", p, repeats), fresh("standalone", p, repeats)) for p in paths]
    spos_time = statistics.mean(s["seconds"] / a["seconds"] for s, a in spos)
    spos_mem = statistics.mean(s["peak_mb"] / a["peak_mb"] for s, a in spos)
    mobile_paths = [list(MOBILE.decisions(MOBILE.sample(rng))) for _ in range(n_paths)]
    proxyless = [(fresh("proxyless", p, repeats), fresh("mobilenet", p, repeats)) for p in mobile_paths]
    proxyless_time = statistics.mean(s["seconds"] / a["seconds"] for s, a in proxyless)
    proxyless_mem = statistics.mean(s["peak_mb"] / a["peak_mb"] for s, a in proxyless)
    results = {"darts_time_ratio": darts["seconds"] / total["seconds"], "darts_memory_ratio": darts["peak_mb"] / total["peak_mb"],
               "spos_time_ratio": spos_time, "spos_memory_ratio": spos_mem,
               "proxyless_time_ratio": proxyless_time, "proxyless_memory_ratio": proxyless_mem,
               "darts": darts, "standalone": singles, "spos": [{"path": SPACE.decode(p).key, "supernet": s, "standalone": a}
                                                               for p, (s, a) in zip(paths, spos)],
               "proxyless": [{"path": MOBILE.decode(p).key, "supernet": s, "standalone": a}
                             for p, (s, a) in zip(mobile_paths, proxyless)]}
    rows = [["DARTS step / sum of 5 single-op networks", f"{darts['seconds'] * 1e3:.0f} / {total['seconds'] * 1e3:.0f}",
             f"{results['darts_time_ratio']:.2f}", f"{darts['peak_mb']:.0f} / {total['peak_mb']:.0f}",
             f"{results['darts_memory_ratio']:.2f}", "1.15"]]
    for p, (s, a) in zip(paths, spos):
        rows.append([f"SPOS step / subnet `{SPACE.decode(p).key}`", f"{s['seconds'] * 1e3:.0f} / {a['seconds'] * 1e3:.0f}",
                     f"{s['seconds'] / a['seconds']:.2f}", f"{s['peak_mb']:.0f} / {a['peak_mb']:.0f}",
                     f"{s['peak_mb'] / a['peak_mb']:.2f}", "1.3"])
    rows.append(["SPOS mean", "", f"{spos_time:.2f}", "", f"{spos_mem:.2f}", "1.3"])
    for i, (s, a) in enumerate(proxyless):
        depths = "-".join(str(len(st)) for st in MOBILE.decode(mobile_paths[i]).value["stages"])
        rows.append([f"ProxylessNAS step / MobileNet subnet {i + 1} (depths {depths})",
                     f"{s['seconds'] * 1e3:.0f} / {a['seconds'] * 1e3:.0f}", f"{s['seconds'] / a['seconds']:.2f}",
                     f"{s['peak_mb']:.0f} / {a['peak_mb']:.0f}", f"{s['peak_mb'] / a['peak_mb']:.2f}", "1.3"])
    rows.append(["ProxylessNAS mean", "", f"{proxyless_time:.2f}", "", f"{proxyless_mem:.2f}", "1.3"])
    single_rows = [[op, f"{s['seconds'] * 1e3:.0f}", f"{s['peak_mb']:.0f}"] for op, s in singles.items()]
    publish("supernet_cost", results,
            markdown_table(["step", "CPU ms (this / reference)", "time ratio", "peak MB (this / reference)", "memory ratio", "target"], rows)
            + f"\n\nBatch {BATCH}, 32x32x3, one torch thread; NB201: C=16, one cell per stage; ProxylessNAS: MobileNet supernet, "
              f"k 3/5/7 x e 3/6, depths 2-4, width 1.0, gated step (weights and alpha); time = median process CPU time of "
              f"{repeats} steps; memory = rise of peak RSS over the first step, each network in a fresh process.\n\n"
            + markdown_table(["single-op network", "CPU ms", "peak MB"], single_rows), args.json, quick=args.quick)


if __name__ == "__main__":
    main()
