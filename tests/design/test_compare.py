"""Design-space comparison end to end on digits (tiny budgets), its FLOPs-range sampling, the refinement
and the `nasforge design-space compare` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge.cli import main
from nasforge.data import load_dataset
from nasforge.design.compare import compare_spaces, sample_in_flops, write_comparison
from nasforge.design.refine import refine
from nasforge.errors import NasforgeError
from nasforge.hardware.counting import count_flops
from nasforge.spaces import create_space
from nasforge.spaces.regnet import regnet_widths

FLOPS = (2e5, 8e5)


def test_sampling_keeps_to_the_flops_range_and_the_seed():
    space = create_space("anynet_c")
    chosen, draws = sample_in_flops(space, 6, np.random.default_rng(3), (1, 8, 8), 10, FLOPS)
    again, _ = sample_in_flops(space, 6, np.random.default_rng(3), (1, 8, 8), 10, FLOPS)
    other, _ = sample_in_flops(space, 6, np.random.default_rng(4), (1, 8, 8), 10, FLOPS)
    assert chosen == again and chosen != other and draws >= 6
    assert len({a.key for a, _ in chosen}) == 6
    for arch, flops in chosen:
        assert FLOPS[0] <= flops <= FLOPS[1] and flops == count_flops(space.build(arch, (1, 8, 8), 10), (1, 8, 8))
    with pytest.raises(NasforgeError, match="flops_range: only 0 of 10 samples of space 'anynet_c'"):
        sample_in_flops(space, 1, np.random.default_rng(0), (1, 8, 8), 10, (1, 2), max_draws=10)


def test_compare_trains_and_writes_the_report(tmp_path):
    data = load_dataset("digits")
    spaces = {"anynet_a": create_space("anynet_a"), "regnet": create_space("regnet")}
    results = compare_spaces(spaces, data, n=2, epochs=1, flops_range=FLOPS, seed=0)
    summary = write_comparison(results, tmp_path)
    assert set(summary["spaces"]) == set(spaces) and set(summary["edf_area"]) == set(spaces)
    low, high = summary["error_range"]
    for name, r in results.items():
        assert len(r.errors) == 2 and not r.failed
        assert all(0 <= e <= 100 and low <= e <= high for e in r.errors)
        assert 0 <= summary["edf_area"][name] <= 1
        assert summary["refinement"][name]["regnet_options"]["bottlenecks"]
    written = json.loads((tmp_path / "comparison.json").read_text())
    assert written["spaces"]["regnet"]["errors"] == results["regnet"].errors
    assert "| anynet_a | 2 | 0 |" in (tmp_path / "comparison.md").read_text()
    assert "plotly" in (tmp_path / "edf.html").read_text()


def test_refine_reads_the_best_models():
    space = create_space("regnet")
    good = [space.validate({"d": 8, "w0": 16, "wa": 12.0, "wm": 2.0, "g": 4, "b": 1, "se": 0})]
    bad = [space.validate({"d": 12, "w0": 24, "wa": 20.0, "wm": 2.5, "g": 8, "b": 1, "se": 0})] * 3
    found = refine(space, good + bad, [10.0, 30.0, 31.0, 32.0], top=0.25)
    assert found.top == 1 and found.depths == [8] and found.group_width == {4: 8} and found.bottleneck == {1: 8}
    w0, wa, wm, error = found.fits[0]
    assert error == 0 and regnet_widths(8, w0, wa, wm) == regnet_widths(8, 16, 12.0, 2.0)
    assert found.options["depth"] == [8, 8] and found.options["group_widths"] == [4]
    create_space("regnet", **found.options)  # the refined ranges are a valid RegNet space
    with pytest.raises(NasforgeError, match="space: 'nb201' has no stages to refine"):
        refine(create_space("nb201"), good, [1.0])


def run_cli(*args):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code


def test_cli_compare(tmp_path, capsys):
    assert run_cli("design-space", "compare", "anynet_e", "--n", "2", "--epochs", "1", "--flops-range", "2e5,8e5",
                   "--out", tmp_path) == 0
    assert json.loads((tmp_path / "comparison.json").read_text())["spaces"]["anynet_e"]["errors"]
    assert "| anynet_e | 2 |" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["anynet_a", "--flops-range", "1,x"], "error: flops_range: expected LO,HI numbers, got '1,x'"),
    (["anynet_a", "nope", "--flops-range", "1,2"], "error: space: unknown name 'nope'"),
    (["anynet_a", "anynet_a", "--flops-range", "1,2"], "error: spaces: each space once"),
    (["anynet_a", "--flops-range", "5,2"], "error: flops_range: expected 0 <= low < high"),
    (["anynet_a", "--flops-range", "1,2", "--epochs", "0"], "error: epochs: must be >= 1, got 0"),
])
def test_cli_compare_errors(tmp_path, capsys, args, message):
    assert run_cli("design-space", "compare", *args, "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
