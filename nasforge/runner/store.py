"""Every trial of a run in SQLite (`RUN_DIR/runs.db`), written before the strategy hears of it.

Asks and tells are numbered on one event counter; the strategy's state is saved after each tell with
the counter's value. Resuming restores the last saved state and replays the events after it, so a
run killed at any instant continues exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from nasforge.estimators.base import Result
from nasforge.spaces.base import Arch

RUNNING = "running"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,      -- ask order, from 0
    arch_key TEXT NOT NULL,
    arch_json TEXT NOT NULL,
    fidelity REAL,
    status TEXT NOT NULL,        -- running | ok | failed
    result TEXT,                 -- Result as JSON once finished
    ask_seq INTEGER NOT NULL,
    tell_seq INTEGER,
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 0), seq INTEGER NOT NULL, state BLOB NOT NULL);
"""


@dataclass(frozen=True)
class Trial:
    """One row of the store: an asked architecture and, once finished, its result."""

    id: int
    arch: Arch
    fidelity: float | None
    status: str
    result: Result | None
    ask_seq: int
    tell_seq: int | None


class Store:
    """A run's SQLite database; `space` names the space every stored arch belongs to."""

    def __init__(self, path: str | Path, space: str) -> None:
        self.path = Path(path)
        self.space = space
        self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit; explicit transactions below
        self._db.execute("PRAGMA journal_mode=WAL")  # a commit survives kill -9 of the process
        self._db.executescript(_SCHEMA)
        last_ask, last_tell = self._db.execute("SELECT MAX(ask_seq), MAX(tell_seq) FROM trials").fetchone()
        self._seq = max(-1 if last_ask is None else last_ask, -1 if last_tell is None else last_tell)

    def close(self) -> None:
        self._db.close()

    # -- metadata -------------------------------------------------------------------------------
    def set_meta(self, name: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, json.dumps(value)))

    def get_meta(self, name: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- trials ---------------------------------------------------------------------------------
    def add_trial(self, arch: Arch, fidelity: float | None) -> int:
        """Record an ask; returns the trial id."""
        self._seq += 1
        trial_id = self._db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        self._db.execute(
            "INSERT INTO trials (id, arch_key, arch_json, fidelity, status, ask_seq, started_at) VALUES (?,?,?,?,?,?,?)",
            (trial_id, arch.key, arch.json_text, fidelity, RUNNING, self._seq, time.time()),
        )
        return trial_id

    def finish_trial(self, trial_id: int, result: Result) -> None:
        """Record a tell: the trial's result, committed before the strategy is told."""
        self._seq += 1
        self._db.execute(
            "UPDATE trials SET status=?, result=?, tell_seq=?, finished_at=?, fidelity=IFNULL(?, fidelity) WHERE id=?",
            (result.status, result.to_json(), self._seq, time.time(), result.fidelity, trial_id),
        )

    def trials(self) -> list[Trial]:
        return list(self._select("ORDER BY id"))

    def events_after(self, seq: int) -> list[tuple[str, Trial]]:
        """Asks and tells numbered above `seq`, in the order they happened."""
        events = [("ask", t) for t in self._select("WHERE ask_seq > ?", (seq,))]
        events += [("tell", t) for t in self._select("WHERE tell_seq > ?", (seq,))]
        return sorted(events, key=lambda e: e[1].ask_seq if e[0] == "ask" else e[1].tell_seq)

    def _select(self, where: str, args: tuple = ()) -> Iterator[Trial]:
        query = f"SELECT id, arch_key, arch_json, fidelity, status, result, ask_seq, tell_seq FROM trials {where}"
        for tid, key, text, fidelity, status, result, ask_seq, tell_seq in self._db.execute(query, args):
            yield Trial(
                id=tid,
                arch=Arch(self.space, key, text),
                fidelity=fidelity,
                status=status,
                result=None if result is None else Result.from_dict(json.loads(result)),
                ask_seq=ask_seq,
                tell_seq=tell_seq,
            )

    # -- strategy state -------------------------------------------------------------------------
    def save_snapshot(self, state: bytes) -> None:
        """The strategy's state as of the latest event."""
        self._db.execute("INSERT OR REPLACE INTO snapshot VALUES (0, ?, ?)", (self._seq, state))

    def load_snapshot(self) -> tuple[int, bytes] | None:
        row = self._db.execute("SELECT seq, state FROM snapshot WHERE id = 0").fetchone()
        return None if row is None else (row[0], row[1])
