"""Tabular estimation: look an architecture up in a benchmark table (NAS-Bench-201 style).

The table is a CSV with columns `index,arch,val_acc,test_acc` and any further numeric metric columns;
`arch` is the architecture's key (the official string for NAS-Bench-201). Search sees `val_acc`;
`test_acc` is carried in the result for reporting only — `Objective` refuses to select by it.
"""

from __future__ import annotations

import csv
from pathlib import Path

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator, Result
from nasforge.spaces.base import Arch

REQUIRED_COLUMNS = ("index", "arch", "val_acc", "test_acc")


class TabularEstimator(Estimator):
    """Answers from a table in microseconds; an architecture missing from it is an error."""

    def __init__(self, table: str | Path) -> None:
        self.table = Path(table)
        self._rows = _read_table(self.table)

    def __len__(self) -> int:
        return len(self._rows)

    def keys(self) -> list[str]:
        """Every architecture key in the table, in file order."""
        return list(self._rows)

    def evaluate(self, arch: Arch, fidelity: float | None = None) -> Result:
        metrics = self._rows.get(arch.key)
        if metrics is None:
            raise NasforgeError(f"arch: '{arch.key}' is not in the table {self.table}")
        return Result(metrics=dict(metrics))


def _read_table(path: Path) -> dict[str, dict[str, float]]:
    if not path.is_file():
        raise NasforgeError(f"table: no such file '{path}'")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise NasforgeError(f"table: {path} lacks column(s) {', '.join(missing)} (needs: {', '.join(REQUIRED_COLUMNS)})")
        metric_columns = [c for c in columns if c not in ("index", "arch")]
        rows: dict[str, dict[str, float]] = {}
        for line, row in enumerate(reader, start=2):
            try:
                rows[row["arch"]] = {c: float(row[c]) for c in metric_columns}
            except (TypeError, ValueError):
                raise NasforgeError(f"table: {path} line {line} has a non-numeric metric") from None
    if not rows:
        raise NasforgeError(f"table: {path} has no rows")
    return rows
