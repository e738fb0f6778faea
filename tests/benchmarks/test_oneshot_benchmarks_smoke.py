"""The one-shot benchmarks' measuring paths on a tiny supernet and 400 CIFAR-10 images: a search per
method looked up in the table, the ranking's statistics, and a cost measurement of one step."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # scripts, not a package

from oneshot_nb201 import METHODS, kept_runs, load_data, read_table, report, search
import supernet_cost
from supernet_cost import measure
from supernet_ranking import rank

from nasforge.spaces.nb201 import NB201Space, parse_arch


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory):
    source = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10_train10k.npz"
    if not source.is_file():
        pytest.skip(f"{source} is not there")
    with np.load(source) as arrays:
        x, y = arrays["x"][:400], arrays["y"][:400]
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture(scope="module")
def table(nb201_table):
    return read_table(nb201_table)


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_searches_and_its_arch_is_in_the_table(tiny_cifar, table, method):
    found = search(method, 0, tiny_cifar, quick=True, channels=4)
    assert found["arch"] in table and len(parse_arch(found["arch"])) == 6
    epochs = 1 + METHODS[method][1].get("warmup_epochs", 0)  # --quick: one epoch after the warm-up
    assert found["method"] == method and found["seconds"] > 0 and len(found["log"]) == epochs
    val, test = table[found["arch"]]
    runs = [{"method": method, "seed": 0, "arch": found["arch"], "val_acc": val, "test_acc": test,
             "percentile": 50.0, "seconds": found["seconds"]}]
    assert f"| {method} | 1 |" in report(runs, len(table))


def test_update_keeps_the_published_runs_of_the_methods_and_seeds_not_rerun(tmp_path):
    runs = [{"method": m, "seed": s, "arch": "a"} for m in ("darts", "spos") for s in (0, 1)]
    published = tmp_path / "oneshot_nb201.json"
    published.write_text(json.dumps({"runs": runs, "logs": {f"{r['method']}/{r['seed']}": [] for r in runs}}))
    kept, logs = kept_runs(published, {"spos/0", "spos/1"})
    assert [(r["method"], r["seed"]) for r in kept] == [("darts", 0), ("darts", 1)] and set(logs) == {"darts/0", "darts/1"}
    assert kept_runs(tmp_path / "none.json", {"spos/0"}) == ([], {})


def test_ranking_gives_rank_statistics_of_the_inherited_scores(tiny_cifar, table):
    results = rank(load_data(tiny_cifar, quick=True), table, epochs=1, count=6, channels=4)
    assert results["n"] == 6 and len(results["archs"]) == 6
    assert -1 <= results["kendall"] <= 1 and -1 <= results["spearman"] <= 1


def test_cost_measures_a_step_in_cpu_seconds_and_megabytes(monkeypatch):
    monkeypatch.setattr(supernet_cost, "SPACE", NB201Space(channels=4, cells_per_stage=1))
    monkeypatch.setattr(supernet_cost, "BATCH", 8)
    spos = measure("spos", [3] * 6, repeats=1)
    assert spos["seconds"] > 0 and spos["peak_mb"] >= 0


def test_cost_measures_a_proxyless_step_and_its_mobilenet_subnet(monkeypatch):
    from nasforge.spaces.mobilenet import MobileNetSpace

    tiny = MobileNetSpace(stem=8, widths=(8, 16), strides=(2, 2), depths=(1, 2), kernels=(3, 5), expansions=(2,),
                          se=(False,), acts=("relu",), width_mults=(1.0,), final=16, head=16)
    monkeypatch.setattr(supernet_cost, "MOBILE", tiny)
    monkeypatch.setattr(supernet_cost, "BATCH", 8)
    path = list(tiny.decisions(tiny.sample(np.random.default_rng(0))))
    for kind in ("proxyless", "mobilenet"):
        cost = measure(kind, path, repeats=1)
        assert cost["seconds"] > 0 and cost["peak_mb"] >= 0
