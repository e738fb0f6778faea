"""Multi-objective and MnasNet runs end to end: pareto.json is the front of the trials (checked pair by pair),
best.json the objective's choice, constraints never broken by what is returned, costs from a latency table,
`nasforge show` lists the Pareto set, and a real hardware-aware search on digits writes its Pareto plot."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from nasforge.cli import main
from nasforge.estimators.base import Result
from nasforge.hardware.lookup import build_table
from nasforge.objective import parse_objective
from nasforge.runner.config import RunConfig
from nasforge.runner.run_dir import select_best
from nasforge.runner.search import run_search
from nasforge.runner.store import Trial
from nasforge.spaces import create_space
from nasforge.strategies.constrained import Constraints

SMALL = {"channels": 4, "cells_per_stage": 1}  # FLOPs and params of tiny networks count fast


def _rows(run_dir):
    return [r for r in csv.DictReader((run_dir / "trials.csv").open()) if r["status"] == "ok"]


def _dominates(a, b):
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def _tabular(table, out, objective, **fields):
    return run_search(RunConfig(out=str(out), space="nb201", space_options=fields.pop("space_options", SMALL),
                                strategy=fields.pop("strategy", "nsga2"),
                                estimator="tabular", table=str(table), objective=objective, budget=30, seed=2, **fields))


def test_pareto_json_is_the_front_of_the_trials_and_best_its_most_accurate(nb201_table, tmp_path):
    _tabular(nb201_table, tmp_path / "run", "pareto:val_acc,flops")
    rows = _rows(tmp_path / "run")
    points = {r["key"]: (float(r["val_acc"]), -float(r["flops"])) for r in rows}
    front = json.loads((tmp_path / "run" / "pareto.json").read_text())
    members = {f["key"] for f in front}
    for key, point in points.items():  # a member is dominated by no trial; every other trial by some trial
        dominated = any(_dominates(other, point) for other in points.values())
        assert dominated == (key not in members), key
    assert all({"key", "arch", "metrics"} <= set(f) and "flops" in f["metrics"] for f in front)
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["key"] in members and best["metrics"]["val_acc"] == max(p[0] for p in points.values())
    assert (tmp_path / "run" / "pareto.html").stat().st_size > 1000


def test_the_mnasnet_reward_selects_the_best_by_hand(nb201_table, tmp_path):
    target = 2e6
    _tabular(nb201_table, tmp_path / "run", f"mnasnet-hard:flops<={target:g}", strategy="random")
    rows = _rows(tmp_path / "run")
    # hard setting: accuracy, times target / FLOPs above the target
    reward = {r["key"]: float(r["val_acc"]) * min(1.0, target / float(r["flops"])) for r in rows}
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert reward[best["key"]] == pytest.approx(max(reward.values()))
    assert not (tmp_path / "run" / "pareto.json").exists()  # one objective: no front


def test_constraints_are_never_broken_by_the_best_or_the_front(nb201_table, tmp_path):
    _tabular(nb201_table, tmp_path / "free", "pareto:val_acc,params")
    free_best = json.loads((tmp_path / "free" / "best.json").read_text())
    limit = int(free_best["metrics"]["params"]) - 1  # without the limit the best breaks it
    _tabular(nb201_table, tmp_path / "run", "pareto:val_acc,params", constraints={"max_params": limit})
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    front = json.loads((tmp_path / "run" / "pareto.json").read_text())
    assert best["metrics"]["params"] <= limit and all(f["metrics"]["params"] <= limit for f in front)
    # and selection itself refuses a trial whose recorded metrics break a limit
    space = create_space("nb201")
    fat, thin = (space.sample(np.random.default_rng(s)) for s in (0, 1))
    trials = [Trial(0, fat, None, "ok", Result({"val_acc": 90.0, "params": 9e5}), 0, None),
              Trial(1, thin, None, "ok", Result({"val_acc": 80.0, "params": 1e5}), 1, None)]
    assert select_best(trials, parse_objective("val_acc"), Constraints(max_params=500_000)).id == 1


def test_show_lists_the_pareto_set(nb201_table, tmp_path, capsys):
    _tabular(nb201_table, tmp_path / "run", "pareto:val_acc,flops")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["show", str(tmp_path / "run")])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out.replace("\n", "").replace(" ", "").replace("│", "")
    front = json.loads((tmp_path / "run" / "pareto.json").read_text())
    assert f"Paretosetofpareto:val_acc,flops:{len(front)}trials" in shown
    assert all(f["key"].replace(" ", "") in shown for f in front)


def test_a_latency_table_gives_latency_ms(nb201_table, tmp_path):
    from nasforge.hardware.lookup import load_table
    from nasforge.spaces.nb201 import NB201_OPS, format_arch

    space = create_space("nb201", **SMALL)
    uniform = [space.validate(format_arch([op] * 6)) for op in NB201_OPS]  # every op at every position
    table = build_table(space, uniform, input_shape=(3, 32, 32), num_classes=10, backend="eager",
                        calibration=uniform[:2], warmup=1, repeats=3, space_options=SMALL)
    path = table.save(tmp_path / "lut.json")
    _tabular(nb201_table, tmp_path / "run", "pareto:val_acc,latency_ms", latency_table=str(path))
    saved = load_table(path, space="nb201", space_options=SMALL)
    for row in _rows(tmp_path / "run"):  # every latency is the table's sum of entries plus its overhead
        model = space.build(space.validate(row["key"]), (3, 32, 32), 10)
        assert float(row["latency_ms"]) == pytest.approx(saved.predict(model), rel=1e-9)
    with pytest.raises(Exception, match="measured for space_options"):
        _tabular(nb201_table, tmp_path / "other", "pareto:val_acc,latency_ms", latency_table=str(path),
                 space_options={"channels": 8, "cells_per_stage": 1})


def test_hardware_aware_search_on_digits_writes_a_pareto_plot(tmp_path):
    """Real training (1 epoch on digits) and measured latency, two objectives, 3 trials."""
    outcome = run_search(RunConfig(out=str(tmp_path / "run"), space="nb201", space_options=SMALL, strategy="mo-evolution",
                                   estimator="train", objective="pareto:val_acc,latency_ms", epochs=1, budget=3, seed=0))
    assert len(outcome.trials) == 3 and all(t.status == "ok" for t in outcome.trials)
    assert all(t.result.metrics["latency_ms"] > 0 and 0 <= t.result.metrics["val_acc"] <= 100 for t in outcome.trials)
    front = json.loads((tmp_path / "run" / "pareto.json").read_text())
    assert 1 <= len(front) <= 3 and (tmp_path / "run" / "pareto.html").is_file()
