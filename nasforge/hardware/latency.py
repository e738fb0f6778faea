"""Measured CPU latency of a built network: wall-clock milliseconds per forward pass of one batch.

Latency, unlike FLOPs, depends on the runtime, the thread count and the batch size (MnasNet, Tan et al.
2019, measures it on the target device for this reason), so all three are arguments and are reported
back with the spread of the timings. Each timed call is one `time.perf_counter` interval (or, with
`clock="cpu"`, of the thread's CPU time); the first
`warmup` calls (allocator, one-off kernel selection, TorchScript's profiling runs) are not counted.

>>> import torch.nn as nn
>>> stats = measure_latency(nn.Linear(64, 10), (64,), repeats=5)
>>> stats.p10_ms <= stats.median_ms <= stats.p90_ms
True
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.export import evaluating, onnx_session, random_input, to_onnx, to_torchscript

__all__ = ["BACKENDS", "LatencyStats", "measure_latency"]

BACKENDS = ("eager", "torchscript", "onnxruntime", "cuda", "onnxruntime-cuda")
#: what a timed call is measured with: wall-clock time, or the calling thread's CPU time (`time.thread_time`)
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
#: the backends that run on a GPU: PyTorch eager on CUDA, ONNX Runtime's CUDA execution provider
GPU_BACKENDS = ("cuda", "onnxruntime-cuda")
#: blocks the calls to a network are split into when it is timed in alternation with a reference network
REFERENCE_BLOCKS = 4


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per forward pass of one batch of `batch_size` inputs: median and the 10th / 90th
    percentiles of `repeats` timed calls, run by `backend` on `threads` CPU threads."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    threads: int
    batch_size: int
    backend: str
    clock: str = "wall"
    #: the median of the reference network's calls, timed in alternation with these (None without a reference)
    reference_ms: float | None = None


def measure_latency(model: nn.Module, input_shape: tuple[int, ...], *, batch_size: int = 1, warmup: int = 10,
                    repeats: int = 30, threads: int | None = None, backend: str = "eager",
                    isolate: bool = False, clock: str = "wall", reference: nn.Module | None = None) -> LatencyStats:
    """Time `model` in eval mode on a (batch_size, *input_shape) batch with `backend` (one of `BACKENDS`).

    `threads` sets torch's (and ONNX Runtime's intra-op) thread count for the call only; None keeps
    torch's current count. The model's training flags, BN statistics and torch's thread count are left
    as they were. The model must be on the CPU; the GPU backends time a copy on the GPU (each call
    synchronised) and refuse to run without one. `isolate` measures in a fresh Python process (spawned,
    so no allocator, thread pool or JIT cache of this one is shared; it costs the start of a process).

    `clock="cpu"` times each call by the CPU time of the calling thread, which with `threads=1` on the CPU
    backends is where all the work runs: on a machine shared with other jobs it leaves out the time the
    thread waited for a core (which inflates long calls more than short ones), and on an idle machine it
    equals the wall-clock time.

    A machine's speed wanders (other tenants of its host, clock speed, memory traffic): one network's median
    of 30 consecutive calls can differ by 5 % from a minute earlier, for every network alike. With a
    `reference` network (taking the same input), the calls to `model` are split into `REFERENCE_BLOCKS`
    blocks alternating with blocks of reference calls, and `reference_ms` is the reference's median over the
    same span: `median_ms / reference_ms` compares networks measured at different times on the same footing.
    """
    if backend not in BACKENDS:
        raise NasforgeError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if clock not in CLOCKS:
        raise NasforgeError(f"clock: expected one of {', '.join(CLOCKS)}, got {clock!r}")
    if clock == "cpu" and (threads != 1 or backend in GPU_BACKENDS):
        raise NasforgeError("clock: 'cpu' times the calling thread only, so it needs threads=1 and a CPU backend "
                            "(allowed otherwise: wall)")
    _check_gpu(backend)
    if isolate:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(measure_latency, model, input_shape, batch_size=batch_size, warmup=warmup,
                               repeats=repeats, threads=threads, backend=backend, clock=clock,
                               reference=reference).result()
    _check_count("batch_size", batch_size, 1)
    _check_count("warmup", warmup, 0)
    _check_count("repeats", repeats, 1)
    if threads is not None:
        _check_count("threads", threads, 1)
    devices = {str(t.device) for t in [*model.parameters(), *model.buffers()]} - {"cpu"}
    if devices:
        raise NasforgeError(f"model: latency is measured on the CPU; move the model to 'cpu' "
                            f"(it is on {sorted(devices)})")
    x = random_input(model, input_shape, batch_size)
    tick = CLOCKS[clock]
    previous = torch.get_num_threads()
    used = previous if threads is None else threads
    torch.set_num_threads(used)
    try:
        with evaluating(model), evaluating(nn.Identity() if reference is None else reference):
            forward = _forward(backend, model, input_shape, x, used)
            timed_reference = None if reference is None else _forward(backend, reference, input_shape, x, used)
            with torch.inference_mode():
                _timed(forward, warmup, tick)
                if timed_reference is None:
                    times, against = _timed(forward, repeats, tick), []
                else:
                    _timed(timed_reference, warmup, tick)
                    blocks = np.array_split(np.arange(repeats), min(REFERENCE_BLOCKS, repeats))
                    calls = -(-repeats // (2 * len(blocks)))  # the reference takes about a third of the time
                    times, against = [], _timed(timed_reference, calls, tick)
                    for block in blocks:
                        times += _timed(forward, len(block), tick)
                        against += _timed(timed_reference, calls, tick)
    finally:
        torch.set_num_threads(previous)
    p10, median, p90 = np.percentile(np.array(times) * 1e3, [10, 50, 90])
    return LatencyStats(median_ms=float(median), p10_ms=float(p10), p90_ms=float(p90), repeats=repeats,
                        threads=used, batch_size=batch_size, backend=backend, clock=clock,
                        reference_ms=float(np.median(against) * 1e3) if against else None)


def _timed(forward: Callable[[], object], calls: int, tick: Callable[[], float]) -> list[float]:
    """Seconds (by `tick`) each of `calls` consecutive calls of `forward` took."""
    times = []
    for _ in range(calls):
        start = tick()
        forward()
        times.append(tick() - start)
    return times


def _forward(backend: str, model: nn.Module, input_shape: tuple[int, ...], x: torch.Tensor,
             threads: int) -> Callable[[], object]:
    """One call of `model` on `x` by `backend`, with the conversion done beforehand (it is not timed)."""
    if backend == "eager":
        return lambda: model(x)
    if backend == "torchscript":
        script = to_torchscript(model, input_shape)
        return lambda: script(x)
    if backend == "cuda":
        on_gpu, x_gpu = copy.deepcopy(model).cuda(), x.cuda()

        def call() -> object:
            out = on_gpu(x_gpu)
            torch.cuda.synchronize()  # kernels are asynchronous: time their completion
            return out

        return call
    with tempfile.TemporaryDirectory() as folder:  # the session holds the model in memory once created
        path = to_onnx(model, input_shape, Path(folder) / "model.onnx", batch_size=x.shape[0])
        if backend == "onnxruntime-cuda":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CUDAExecutionProvider"])
        else:
            session = onnx_session(path, threads=threads)
    # a network whose output does not depend on its input (an all-zero NB201 cell) exports with no input
    feed = {i.name: x.numpy() for i in session.get_inputs()}
    return lambda: session.run(None, feed)


def _check_gpu(backend: str) -> None:
    """A GPU backend without its GPU is refused by name, never quietly timed on the CPU."""
    if backend == "cuda" and not torch.cuda.is_available():
        raise NasforgeError("backend: 'cuda' needs a CUDA GPU and none is available (allowed here: eager, torchscript, onnxruntime)")
    if backend == "onnxruntime-cuda":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers() or not torch.cuda.is_available():
            raise NasforgeError("backend: 'onnxruntime-cuda' needs a CUDA GPU and onnxruntime-gpu; "
                                "they are not available (allowed here: eager, torchscript, onnxruntime)")


def _check_count(field: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise NasforgeError(f"{field}: expected an integer >= {minimum}, got {value!r}")
