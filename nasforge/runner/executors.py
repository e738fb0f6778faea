"""Where trials run: in this process, or in forked local worker processes.

Both enforce the per-trial time limit and turn any exception into a failed `Result`, so one bad
candidate never stops a search.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from abc import ABC, abstractmethod
from collections import deque
from contextlib import contextmanager
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from typing import Iterator

import torch

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator, Result
from nasforge.spaces.base import Arch

EXECUTORS = ("inline", "processes")


class TrialTimeout(Exception):
    """A trial ran past its time limit."""


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `TrialTimeout` in this (main) thread after `seconds` of wall time."""
    if not seconds:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TrialTimeout(f"exceeded the trial time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def evaluate_safely(estimator: Estimator, arch: Arch, fidelity: float | None, timeout: float | None) -> Result:
    """`estimator.evaluate`, with errors and time-outs recorded as a failed result and wall time as cost."""
    start = time.perf_counter()
    try:
        with _time_limit(timeout):
            result = estimator.evaluate(arch, fidelity)
    except Exception as error:  # any failure of a candidate is data, not a crash
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        return Result.failed(message, fidelity, time.perf_counter() - start)
    if result.fidelity is None and fidelity is not None:
        result = replace(result, fidelity=fidelity)
    return result if result.cost_s else replace(result, cost_s=time.perf_counter() - start)


class Executor(ABC):
    """Runs submitted trials and hands back finished ones, at most `workers` at a time."""

    def __init__(self, estimator: Estimator, *, workers: int = 1, timeout: float | None = None) -> None:
        if workers < 1:
            raise NasforgeError(f"workers: must be >= 1, got {workers}")
        if timeout is not None and timeout <= 0:
            raise NasforgeError(f"trial_timeout: must be > 0 seconds, got {timeout}")
        self.estimator, self.workers, self.timeout = estimator, workers, timeout

    @abstractmethod
    def submit(self, trial_id: int, arch: Arch, fidelity: float | None) -> None:
        """Start (or queue) a trial."""

    @abstractmethod
    def wait(self) -> tuple[int, Result]:
        """Block until a trial finishes; its id and result."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Trials submitted and not yet handed back."""

    def close(self) -> None:
        """Stop whatever still runs."""


class InlineExecutor(Executor):
    """Evaluates in this process, one trial at a time, in submission order."""

    def __init__(self, estimator: Estimator, *, workers: int = 1, timeout: float | None = None) -> None:
        super().__init__(estimator, workers=workers, timeout=timeout)
        self._queue: deque[tuple[int, Arch, float | None]] = deque()

    def submit(self, trial_id: int, arch: Arch, fidelity: float | None) -> None:
        self._queue.append((trial_id, arch, fidelity))

    def wait(self) -> tuple[int, Result]:
        trial_id, arch, fidelity = self._queue.popleft()
        return trial_id, evaluate_safely(self.estimator, arch, fidelity, self.timeout)

    @property
    def pending(self) -> int:
        return len(self._queue)


class ProcessExecutor(Executor):
    """One forked process per trial, `workers` at once; the data and estimator are inherited, not copied.

    CPU threads are shared out (`cores // workers` each). A process that outlives its time limit by
    more than a grace period (stuck in native code) is killed; one that dies is a failed trial.
    """

    GRACE_S = 5.0

    def __init__(self, estimator: Estimator, *, workers: int = 2, timeout: float | None = None) -> None:
        super().__init__(estimator, workers=workers, timeout=timeout)
        self._context = mp.get_context("fork")
        self._threads = max(1, (os.cpu_count() or 1) // workers)
        self._running: dict[Connection, tuple[int, mp.Process, float | None]] = {}

    def submit(self, trial_id: int, arch: Arch, fidelity: float | None) -> None:
        if len(self._running) >= self.workers:
            raise NasforgeError(f"workers: all {self.workers} busy; wait() before submitting more")
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(target=self._work, args=(send, arch, fidelity), daemon=True)
        process.start()
        send.close()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout + self.GRACE_S
        self._running[receive] = (trial_id, process, deadline)

    def _work(self, send: Connection, arch: Arch, fidelity: float | None) -> None:
        torch.set_num_threads(self._threads)
        send.send(evaluate_safely(self.estimator, arch, fidelity, self.timeout).to_dict())
        send.close()

    def wait(self) -> tuple[int, Result]:
        while True:
            deadlines = [d for _, _, d in self._running.values() if d is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = wait(list(self._running), timeout=timeout)
            if ready:
                return self._collect(ready[0])
            for conn, (trial_id, process, deadline) in list(self._running.items()):
                if deadline is not None and time.monotonic() >= deadline:
                    process.kill()
                    return self._collect(conn, f"TrialTimeout: killed after {self.timeout:g} s + {self.GRACE_S:g} s grace")

    def _collect(self, conn: Connection, error: str | None = None) -> tuple[int, Result]:
        trial_id, process, _ = self._running.pop(conn)
        result = None
        if error is None:
            try:
                result = Result.from_dict(conn.recv())
            except EOFError:
                error = "WorkerDied: the worker process ended without a result"
        conn.close()
        process.join()
        if result is None:
            result = Result.failed(f"{error} (exit code {process.exitcode})")
        return trial_id, result

    @property
    def pending(self) -> int:
        return len(self._running)

    def close(self) -> None:
        for conn, (_, process, _) in self._running.items():
            process.kill()
            process.join()
            conn.close()
        self._running.clear()


def create_executor(name: str, estimator: Estimator, *, workers: int = 1, timeout: float | None = None) -> Executor:
    """The executor called `name` (one of `EXECUTORS`)."""
    if name == "inline":
        if workers != 1:
            raise NasforgeError(f"workers: the inline executor runs 1 trial at a time, got {workers} (use --executor processes)")
        return InlineExecutor(estimator, timeout=timeout)
    if name == "processes":
        return ProcessExecutor(estimator, workers=workers, timeout=timeout)
    raise NasforgeError(f"executor: unknown name '{name}' (allowed: {', '.join(EXECUTORS)})")
