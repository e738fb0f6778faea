"""Data-parallel supernet training: one process per device, each on its shard of every global batch.

`OneShot(devices=["cuda:0", "cuda:1"])` (or `["cpu", "cpu"]`) makes `fit` start one process per device
(torch.multiprocessing, forked from a fork server that has imported torch and nasforge once, so a second
`fit` starts in a fraction of a second; spawned where there is no fork server), joined in a process group
(gloo on CPUs, NCCL on GPUs; rendezvous through a file in a fresh temporary directory, so no port is picked
or raced for). Each rank starts from the calling process' state, trains, and the result (weights, method
state, optimiser states, RNG, log) comes back to the caller.

The ranks stay identical, step for step:

- every rank draws the same random numbers (shuffles, crops and flips of the whole global batch, sampled
  paths, Gumbel noise) from the same seeded generator, then keeps its own `batch_size / len(devices)`
  images of the training batch and of the validation batch;
- the weights' gradients are averaged over the ranks in one all-reduce before clipping and the SGD step;
  every other optimiser the method holds as an attribute (alpha's Adam) averages its parameters' gradients
  just before it steps; ENAS averages its reward. The averaged gradient is the whole batch's gradient
  whenever the images' losses do not interact;
- at the end of each epoch the epoch's loss and accuracy and the BatchNorm running statistics are
  averaged, so rank 0's log and checkpoint describe the whole batch;
- when training ends the ranks compare a digest of their whole state and refuse to return one that differs
  (a method that learned from its own shard alone).

BatchNorm: in training mode each rank normalises over its own shard, as DistributedDataParallel does
without SyncBatchNorm (not used: torch runs it on GPUs only). The run is therefore not the one-device run's
arithmetic with BatchNorm, only close to it; with the per-image losses independent (BatchNorm on running
statistics) it is that arithmetic up to rounding, except second-order DARTS, which unrolls each rank's
weights on its own shard. The averaged running mean is the whole batch's, the averaged running variance
leaves out the spread between the shards' means. Rank 0 writes the checkpoint after every epoch, sends
each log row to the caller and waits until its `on_epoch` has returned, so resuming and `on_epoch` (one
that raises stops the training there) work as on one device; the ranks exit at once when the caller
dies, even by kill -9 (removing its temporary directory).

Why not `DistributedDataParallel`: the methods call the supernet itself, in its three modes, read and set
its attributes (`aux_skip`, `sizes`, `derive`) and run it for alpha's gradient alone; wrapping it would give
every method two modules to call (and a `module.` prefix to every checkpoint key). DDP's reducer also
refuses a step of several forwards and one backward (FairNAS' paths: "Expected to mark a variable ready
only once"). One all-reduce of the flattened gradients after the backward, in the trainer's `weight_step`,
computes what the reducer would (the average, and no gradient for parameters no path used, so SGD skips
them as on one device) for every method at once.
"""

from __future__ import annotations

import copy
import hashlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue as queues
import shutil
import tempfile
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from nasforge.oneshot.trainer import OneShot

__all__ = ["all_reduce_mean", "check_devices", "fit_data_parallel"]


def check_devices(devices: Any) -> list[str]:
    """`devices` as a list of device names, refused unless it is a non-empty list of CPUs, or of distinct,
    present GPUs named by index (two processes cannot share one GPU under NCCL)."""
    allowed = "a list such as [cpu, cpu] or [cuda:0, cuda:1]"
    if not isinstance(devices, (list, tuple)) or not devices or not all(isinstance(d, str) for d in devices):
        raise NasforgeError(f"devices: expected {allowed}, got {devices!r}")
    try:
        parsed = [torch.device(d) for d in devices]
    except (RuntimeError, TypeError):
        raise NasforgeError(f"devices: {devices!r} holds a name that is not a torch device (allowed: {allowed})") from None
    kinds = {d.type for d in parsed}
    if not kinds <= {"cpu", "cuda"} or len(kinds) > 1:
        raise NasforgeError(f"devices: all cpu or all cuda:N, got {devices!r} (allowed: {allowed})")
    if kinds == {"cuda"}:
        if any(d.index is None for d in parsed) and len(parsed) > 1:
            raise NasforgeError(f"devices: name each GPU by its index (cuda:0, cuda:1, ...), got {devices!r}")
        present = torch.cuda.device_count()
        if any((d.index or 0) >= present for d in parsed):
            raise NasforgeError(f"devices: {devices!r} asks for GPUs this machine lacks ({present} present: cuda:0 .. cuda:N-1)")
        if len({d.index for d in parsed}) < len(parsed):
            raise NasforgeError(f"devices: each GPU at most once, got {devices!r} (several ranks on one GPU: use fewer devices)")
    return [str(d) for d in devices]


def all_reduce_mean(tensors: Sequence[torch.Tensor]) -> None:
    """Average `tensors` in place over the ranks of the default process group, in one all-reduce."""
    flat = torch.cat([t.detach().flatten() for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for t, mean in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.detach().copy_(mean.view_as(t))


def fit_data_parallel(method: "OneShot", checkpoint: Path | None,
                      on_epoch: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    """Train `method`'s remaining epochs on its `devices`, one process each, and load the result into it;
    `on_epoch` sees each new log row as rank 0 finishes the epoch. Returns the whole log."""
    world = len(method.devices)
    blank = copy.copy(method)  # what each rank sets up anew on its own device: the method as constructed
    for name in method._built:
        delattr(blank, name)
    blank.supernet = None
    blank.threads = method.threads or max(1, torch.get_num_threads() // world)  # the cores, shared out
    start = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    context = mp.get_context(start)
    if start == "forkserver":
        # imported once, by the server: torch, nasforge, the method's, space's and supernet's modules, and
        # torch._dynamo, which torch's optimisers import on first use (seconds)
        context.set_forkserver_preload([__name__, "torch._dynamo",
                                        *{type(x).__module__ for x in (method, method.space, method.supernet)}])
    messages, acks = context.Queue(), context.SimpleQueue()  # ranks -> caller; caller -> rank 0: a row was seen
    with tempfile.TemporaryDirectory(prefix="nasforge-parallel-") as tmp:
        folder = Path(tmp)
        # the method and its state go through a file: torch's shared memory cannot carry empty tensors
        try:
            torch.save({"method": blank, "state": method.state_dict()}, folder / "start.pt")
        except (pickle.PicklingError, AttributeError, TypeError) as error:  # a lambda, a lock, a generator, ...
            raise NasforgeError(f"devices: data-parallel training sends the method to each process, and "
                                f"{type(method).__name__} holds something that cannot be pickled ({error})") from None
        ranks = mp.start_processes(_rank, args=(folder, checkpoint, messages, acks), nprocs=world, join=False,
                                   start_method=start)
        try:
            for kind, value in _receive(messages, ranks):
                if kind == "error":  # the rank's own exception (NasforgeError stays one line), its traceback as the cause
                    raise value[0] from RuntimeError(value[1])
                if kind == "done":
                    break
                method.log.append(value)
                if on_epoch is not None:
                    on_epoch(value)
                acks.put(None)  # rank 0 starts the next epoch only now: an on_epoch that raises stops it here
            else:
                raise RuntimeError("data-parallel training: the ranks exited without a result")
            while not ranks.join():
                pass
        finally:  # an error, or the caller's on_epoch raising: stop the ranks (a checkpoint is written atomically)
            for process in ranks.processes:
                if process.is_alive():
                    process.terminate()
                process.join()
        method.load_state_dict(torch.load(folder / "result.pt", map_location="cpu", weights_only=False))
    return method.log


def _receive(messages: Any, ranks: mp.ProcessContext) -> Iterator[tuple[str, Any]]:
    """The ranks' messages in order; a rank that dies without one (a signal) raises torch's error."""
    exited = False
    while True:
        try:
            yield messages.get(timeout=1.0)
        except queues.Empty:
            if exited:  # every rank had exited a second ago and nothing was left to read
                return
            exited = ranks.join(timeout=0)


def _rank(rank: int, folder: Path, checkpoint: Path | None, messages: Any, acks: Any) -> None:
    """One rank: join the group, set the caller's method up on this rank's device with the caller's state,
    train, check that every rank holds the same state; rank 0 writes the checkpoint, sends each log row and
    waits for the caller to have seen it (as one device's loop waits for `on_epoch`), and saves the result."""
    threading.Thread(target=_exit_with_caller, args=(folder,), daemon=True).start()
    try:
        start = torch.load(folder / "start.pt", map_location="cpu", weights_only=False)
        method = start["method"]
        world, device = len(method.devices), torch.device(method.devices[rank])
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method=f"file://{folder / 'rendezvous'}",
                                rank=rank, world_size=world)
        method.device, method._rank, method._world = str(device), rank, world
        method.load_state_dict(start["state"])
        for optimizer in vars(method).values():  # alpha's Adam and the like: average their gradients before stepping
            if isinstance(optimizer, torch.optim.Optimizer) and optimizer is not method.optimizer:
                optimizer.register_step_pre_hook(lambda o, args, kwargs: method.mean_over_ranks(
                    *(p.grad for group in o.param_groups for p in group["params"] if p.grad is not None)))
        method._train(checkpoint if rank == 0 else None,
                      (lambda row: (messages.put(("row", row)), acks.get())) if rank == 0 else None)
        state = method.state_dict()
        digests: list[str | None] = [None] * world
        dist.all_gather_object(digests, _digest({k: v for k, v in state.items() if k != "log"}))
        if len(set(digests)) > 1:
            raise RuntimeError(f"data-parallel training: the ranks' states differ after training ({method.name} "
                               f"learned something from its own shard without averaging it over the ranks)")
        if rank == 0:
            torch.save(state, folder / "result.pt")
            messages.put(("done", None))
    except Exception as error:
        try:
            pickle.loads(pickle.dumps(error))  # an exception whose __init__ takes other arguments fails on loading
        except Exception:  # it must reach the caller, or the other ranks would wait for this one forever
            error = RuntimeError(f"{type(error).__name__}: {error}")
        messages.put(("error", (error, f"in data-parallel rank {rank}:\n{traceback.format_exc()}")))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _exit_with_caller(folder: Path) -> None:
    """Wait for the caller's death (kill -9: its ranks must not go on writing the checkpoint), then remove
    its temporary directory, which it cannot remove any more, and exit."""
    multiprocessing.connection.wait([multiprocessing.parent_process().sentinel])
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(1)


def _digest(state: Any) -> str:
    """A hash of every tensor's bytes and every other value of a (nested) state."""
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key, item in value.items():
                feed(key)
                feed(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                feed(item)
        else:
            digest.update(pickle.dumps(value))

    feed(state)
    return digest.hexdigest()
