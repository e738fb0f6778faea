"""The ask/tell loop: ask the strategy, run trials on an executor, record, tell, stop at the budget."""

from __future__ import annotations

import pickle
import time
from contextlib import nullcontext

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nasforge.errors import NasforgeError
from nasforge.runner.executors import Executor
from nasforge.runner.store import RUNNING, Store, Trial
from nasforge.strategies.base import Strategy


class Runner:
    """Runs `strategy` against `executor` until `budget` trials (and/or `max_seconds`) are spent.

    Every finished trial is committed to `store` before the strategy is told, and the strategy's state
    is saved after each tell: `run()` on a store that holds an interrupted run resumes it exactly.
    """

    def __init__(self, *, strategy: Strategy, executor: Executor, store: Store, budget: int | None = None,
                 max_seconds: float | None = None, fidelity: float | None = None, progress: bool = False) -> None:
        if budget is None and max_seconds is None:
            raise NasforgeError("budget: give a number of trials, a number of seconds, or both")
        if budget is not None and budget < 0:
            raise NasforgeError(f"budget: must be >= 0 trials, got {budget}")
        if max_seconds is not None and max_seconds <= 0:
            raise NasforgeError(f"max_seconds: must be > 0, got {max_seconds}")
        self.strategy, self.executor, self.store = strategy, executor, store
        self.budget, self.max_seconds, self.fidelity, self.progress = budget, max_seconds, fidelity, progress

    def run(self) -> list[Trial]:
        """Search until the budget is spent; returns every trial of the run (resumed ones included)."""
        in_flight = self._restore()
        trials = {t.id: t for t in self.store.trials()}
        finished = sum(t.status != RUNNING for t in trials.values())
        scores = [self.strategy.objective.score(t.result) for t in trials.values() if t.result is not None]
        best = max((s for s in scores if s is not None), default=None)
        started = time.monotonic()
        with self._progress_bar() as bar:
            task = bar.add_task("search", total=self.budget, completed=finished, best=_shown(best)) if bar else None
            try:
                for trial in in_flight:
                    self.executor.submit(trial.id, trial.arch, trial.fidelity)
                while True:
                    while self.executor.pending < self.executor.workers and self._may_ask(len(trials), started):
                        arch, fidelity = self.strategy.ask_trial()
                        fidelity = self.fidelity if fidelity is None else fidelity
                        trial_id = self.store.add_trial(arch, fidelity)
                        trials[trial_id] = Trial(trial_id, arch, fidelity, RUNNING, None, -1, None)
                        self.executor.submit(trial_id, arch, fidelity)
                    if self.executor.pending == 0:
                        break
                    trial_id, result = self.executor.wait()
                    self.store.finish_trial(trial_id, result)  # recorded before the strategy is told
                    self.strategy.tell(trials[trial_id].arch, result)
                    self.store.save_snapshot(pickle.dumps(self.strategy.state_dict()))
                    finished += 1
                    score = self.strategy.objective.score(result)
                    if score is not None and (best is None or score > best):
                        best = score
                    if bar:
                        bar.update(task, completed=finished, best=_shown(best))
            finally:
                self.executor.close()
        return self.store.trials()

    def _progress_bar(self) -> Progress | nullcontext:
        if not self.progress:
            return nullcontext()
        return Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
        )

    def _restore(self) -> list[Trial]:
        """Bring the strategy to the store's last event; the trials that were running when it stopped."""
        snapshot = self.store.load_snapshot()
        seq = -1
        if snapshot is not None:
            seq, state = snapshot
            self.strategy.load_state_dict(pickle.loads(state))
        for kind, trial in self.store.events_after(seq):
            if kind == "tell":
                self.strategy.tell(trial.arch, trial.result)
                continue
            arch, _ = self.strategy.ask_trial()
            if arch.key != trial.arch.key:
                raise NasforgeError(
                    f"resume: the strategy proposed '{arch.key}' where the store has '{trial.arch.key}' "
                    f"(trial {trial.id}); was the run started with other settings?"
                )
        return [t for t in self.store.trials() if t.status == RUNNING]

    def _may_ask(self, asked: int, started: float) -> bool:
        if self.budget is not None and asked >= self.budget:
            return False
        return self.max_seconds is None or time.monotonic() - started < self.max_seconds


def _shown(score: float | None) -> str:
    return "-" if score is None else f"{score:.4g}"
