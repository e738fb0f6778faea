"""The `nasforge` command end to end: search, show, export, describe, YAML configs and one-line errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from nasforge.cli import main

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code


def tabular_search(table, out, *extra):
    return run_cli("search", "--space", "nb201", "--estimator", "tabular", "--table", table,
                   "--strategy", "evolution", "--budget", "40", "--seed", "1", "--out", out, *extra)


def test_tabular_search_writes_the_run_directory(nb201_table, tmp_path, capsys):
    assert tabular_search(nb201_table, tmp_path / "run") == 0
    rows = list(csv.DictReader((tmp_path / "run" / "trials.csv").open()))
    assert len(rows) == 40 and {"trial", "key", "status", "fidelity", "val_acc", "test_acc", "cost_s"} <= set(rows[0])
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["key"] == best["arch"]  # NAS-Bench-201's JSON form is its official string
    assert best["metrics"]["val_acc"] == max(float(r["val_acc"]) for r in rows)
    assert "best: |" in capsys.readouterr().out


def test_same_seed_same_trials_other_seed_others(nb201_table, tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        run_cli("search", "--space", "nb201", "--estimator", "tabular", "--table", nb201_table, "--strategy", "random",
                "--budget", "10", "--seed", seed, "--out", tmp_path / name)
    keys = {name: [r["key"] for r in csv.DictReader((tmp_path / name / "trials.csv").open())] for name in "abc"}
    assert keys["a"] == keys["b"] != keys["c"]


def test_resume_extends_the_budget_with_identical_trials(nb201_table, tmp_path):
    tabular_search(nb201_table, tmp_path / "whole")
    run_cli("search", "--space", "nb201", "--estimator", "tabular", "--table", nb201_table,
            "--strategy", "evolution", "--budget", "25", "--seed", "1", "--out", tmp_path / "parts")
    assert run_cli("search", "--out", tmp_path / "parts", "--resume", "--budget", "40") == 0
    assert (tmp_path / "parts" / "trials.csv").read_text().splitlines() != []
    strip = lambda path: [(r["key"], r["val_acc"]) for r in csv.DictReader(path.open())]
    assert strip(tmp_path / "parts" / "trials.csv") == strip(tmp_path / "whole" / "trials.csv")


def test_show_lists_the_best_first(nb201_table, tmp_path, capsys):
    tabular_search(nb201_table, tmp_path / "run")
    capsys.readouterr()
    assert run_cli("show", tmp_path / "run", "--top", "3") == 0
    text = capsys.readouterr().out
    rows = sorted(csv.DictReader((tmp_path / "run" / "trials.csv").open()), key=lambda r: (-float(r["val_acc"]), int(r["trial"])))
    listed = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│") and line.split("│")[1].strip()]
    assert "40 trials, 0 failed" in text
    assert listed == [r["trial"] for r in rows[:3]]


def test_yaml_config_with_flags_winning(nb201_table, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"space: nb201\nestimator: tabular\ntable: {nb201_table}\nstrategy: evolution\n"
                      "strategy_options: {population_size: 5, sample_size: 2}\nbudget: 12\n")
    assert run_cli("search", "--config", config, "--budget", "7", "--out", tmp_path / "run") == 0
    assert len((tmp_path / "run" / "trials.csv").read_text().splitlines()) == 1 + 7


def test_describe_prints_params_and_flops(capsys):
    assert run_cli("describe", "--space", "nb201", "--arch", ALL_CONV, "--num-classes", "10") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] == 1_531_546 and info["key"] == ALL_CONV
    assert info["flops"] > 0 and "latency_ms" not in info


def test_describe_latency_and_arch_file(tmp_path, capsys):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(ALL_CONV))
    assert run_cli("describe", "--space", "nb201", "--arch", path, "--input-shape", "1,8,8", "--latency") == 0
    assert json.loads(capsys.readouterr().out)["latency_ms"] > 0


def test_export_writes_verified_models(nb201_table, tmp_path):
    tabular_search(nb201_table, tmp_path / "run")
    assert run_cli("export", tmp_path / "run") == 0
    files = {p.name for p in (tmp_path / "run" / "export").iterdir()}
    assert {"arch.json", "model.ts", "model.onnx"} <= files
    exported = json.loads((tmp_path / "run" / "export" / "arch.json").read_text())
    assert exported["key"] == json.loads((tmp_path / "run" / "best.json").read_text())["key"]


def _bad_inputs(table, tmp_path):
    bad_table = tmp_path / "bad.csv"
    bad_table.write_text("index,arch,val_acc\n0,x,1\n")
    base = ["search", "--out", str(tmp_path / "run")]
    return {
        "unknown space": (base + ["--space", "nb999"], "space: unknown name 'nb999' (allowed: anynet_a, anynet_b, anynet_c, anynet_d, anynet_e, darts, mobilenet, nb201, regnet)"),
        "unknown strategy": (base + ["--strategy", "annealing"], "strategy: unknown name 'annealing'"),
        "unknown estimator": (base + ["--estimator", "oracle"], "estimator: unknown name 'oracle'"),
        "negative budget": (base + ["--budget", "-3"], "budget: must be a whole number >= 0"),
        "missing data": (base + ["--dataset", str(tmp_path / "none.npz")], "dataset"),
        "table columns": (base + ["--estimator", "tabular", "--table", str(bad_table)], "lacks column(s) test_acc"),
        "table missing": (base + ["--estimator", "tabular"], "table: the tabular estimator needs a table"),
        "malformed arch": (["describe", "--space", "darts", "--arch", "{normal: ["], "arch: not valid JSON"),
        "bad arch string": (["describe", "--space", "nb201", "--arch", "|conv~0|"], "arch"),
        "bad shape": (["describe", "--space", "nb201", "--arch", ALL_CONV, "--input-shape", "3,32"], "input_shape"),
        "resume nothing": (base + ["--resume"], f"run_dir: '{tmp_path / 'run'}' holds no run"),
        "show nothing": (["show", str(tmp_path / "nowhere")], "holds no run"),
        "retrain nothing": (["retrain", str(tmp_path / "nowhere")], f"run_dir: '{tmp_path / 'nowhere'}' holds no run"),
        "inline workers": (base + ["--workers", "2"], "workers"),
    }


BAD_CASES = ["unknown space", "unknown strategy", "unknown estimator", "negative budget", "missing data", "table columns",
             "table missing", "malformed arch", "bad arch string", "bad shape", "resume nothing", "show nothing",
             "retrain nothing", "inline workers"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_with_exit_code_2(case, nb201_table, tmp_path, capsys):
    args, message = _bad_inputs(nb201_table, tmp_path)[case]
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_bad_input_through_the_real_command_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nasforge.cli", "search", "--budget", "-1", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == "error: budget: must be a whole number >= 0, got -1\n"


def test_constrained_search_keeps_the_limit_and_resumes_with_it(nb201_table, tmp_path, capsys):
    from nasforge.hardware import count_params
    from nasforge.runner.search import load_config
    from nasforge.spaces import create_space

    run, limit = tmp_path / "run", 500_000
    assert run_cli("search", "--space", "nb201", "--estimator", "tabular", "--table", nb201_table,
                   "--strategy", "random", "--budget", "12", "--seed", "0", "--max-params", limit, "--out", run) == 0
    assert "infeasible rejected" in capsys.readouterr().out
    assert load_config(run).constraints == {"max_params": limit}
    assert run_cli("search", "--out", run, "--resume", "--max-params", "1000000") == 2
    assert capsys.readouterr().err.startswith("error: resume: max_params is fixed by the run being resumed")
    assert run_cli("search", "--out", run, "--resume", "--budget", "16") == 0  # the stored limit holds on
    assert run_cli("show", run) == 0 and "infeasible rejected" in capsys.readouterr().out
    space = create_space("nb201")
    keys = [r["key"] for r in csv.DictReader((run / "trials.csv").open())]
    assert len(keys) == 16 and all(count_params(space.build(space.validate(k), (3, 32, 32), 10)) <= limit for k in keys)


@pytest.mark.parametrize("flag, value, message", [("--max-params", "-1", "max_params: must be > 0, got -1"),
                                                  ("--max-flops", "0", "max_flops: must be > 0, got 0.0"),
                                                  ("--max-latency-ms", "x", "Invalid value for '--max-latency-ms'")])
def test_bad_limit_is_one_line_with_exit_code_2(flag, value, message, tmp_path, capsys):
    assert run_cli("search", flag, value, "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "run").exists()
