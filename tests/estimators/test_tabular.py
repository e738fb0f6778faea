"""The tabular estimator on the real NAS-Bench-201 table and on malformed tables."""

from __future__ import annotations

import pytest

from nasforge import NasforgeError
from nasforge.estimators.tabular import TabularEstimator
from nasforge.spaces.base import Arch


def test_looks_up_the_official_row(nb201_table):
    table = TabularEstimator(nb201_table)
    assert len(table) == 15625
    arch = Arch.of("nb201", "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    result = table.evaluate(arch)
    assert result.ok
    assert result.metrics["val_acc"] == pytest.approx(82.83399999389648)  # row index 1 of the file
    assert result.metrics["test_acc"] == pytest.approx(88.22)
    assert "index" not in result.metrics


def test_missing_arch_is_a_clear_error(nb201_table):
    with pytest.raises(NasforgeError, match="not in the table"):
        TabularEstimator(nb201_table).evaluate(Arch.of("nb201", "|none~0|+|none~0|none~1|+|x~0|"))


def test_extra_metric_columns_are_carried(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("index,arch,val_acc,test_acc,train_time\n0,a,50.5,49,12.5\n")
    assert TabularEstimator(path).evaluate(Arch.of("s", "a")).metrics == {"val_acc": 50.5, "test_acc": 49.0, "train_time": 12.5}


@pytest.mark.parametrize("text, message", [
    ("index,arch,val_acc\n0,a,1\n", "lacks column.*test_acc"),
    ("index,arch,val_acc,test_acc\n", "no rows"),
    ("index,arch,val_acc,test_acc\n0,a,high,2\n", "line 2 has a non-numeric"),
])
def test_malformed_tables_are_refused(tmp_path, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(NasforgeError, match=message):
        TabularEstimator(path)


def test_missing_file(tmp_path):
    with pytest.raises(NasforgeError, match="no such file"):
        TabularEstimator(tmp_path / "nope.csv")
