"""The SQLite store: trials, results, the event order and the strategy snapshot survive reopening."""

from __future__ import annotations

from nasforge.estimators.base import Result
from nasforge.runner.store import RUNNING, Store
from nasforge.spaces.base import Arch


def test_trials_and_events_survive_reopening(tmp_path):
    path = tmp_path / "runs.db"
    store = Store(path, space="s")
    a, b = Arch.of("s", {"x": 1}), Arch.of("s", {"x": 2})
    assert store.add_trial(a, 3.0) == 0
    assert store.add_trial(b, 3.0) == 1
    store.finish_trial(1, Result(metrics={"val_acc": 90.0}, cost_s=1.5, curve=({"epoch": 1, "val_acc": 90.0},)))
    store.save_snapshot(b"state-after-tell")
    store.close()

    store = Store(path, space="s")
    first, second = store.trials()
    assert (first.arch, first.status, first.result) == (a, RUNNING, None)
    assert second.arch == b and second.result.metrics == {"val_acc": 90.0}
    assert second.result.curve == ({"epoch": 1, "val_acc": 90.0},)
    assert store.load_snapshot() == (2, b"state-after-tell")
    # events numbered on one counter: ask 0, ask 1, tell 1
    assert [(kind, t.id) for kind, t in store.events_after(-1)] == [("ask", 0), ("ask", 1), ("tell", 1)]
    assert [(kind, t.id) for kind, t in store.events_after(1)] == [("tell", 1)]
    assert store.add_trial(a, None) == 2  # the counter carries on after reopening
    assert [(kind, t.id) for kind, t in store.events_after(2)] == [("ask", 2)]


def test_failed_result_keeps_its_error_and_result_fidelity_wins(tmp_path):
    store = Store(tmp_path / "runs.db", space="s")
    tid = store.add_trial(Arch.of("s", "a"), None)
    store.finish_trial(tid, Result.failed("ValueError: diverged", fidelity=5.0))
    (trial,) = store.trials()
    assert trial.status == "failed" and trial.result.error == "ValueError: diverged" and trial.fidelity == 5.0


def test_meta_round_trip(tmp_path):
    store = Store(tmp_path / "runs.db", space="s")
    store.set_meta("config", {"budget": 3, "space": "nb201"})
    assert store.get_meta("config") == {"budget": 3, "space": "nb201"}
    assert store.get_meta("absent", 7) == 7
