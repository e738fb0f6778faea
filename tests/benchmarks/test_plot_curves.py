"""The benchmark plot: a hand-made results file becomes an HTML page with one curve per method."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # scripts, not a package

from plot_curves import main, plot_curves  # noqa: E402

RESULTS = {
    "budgets": [10, 20, 40],
    "oracle_test_acc": 94.37,
    "methods": {
        "evolution": {"mean": {"10": 88.1, "20": 90.5, "40": 92.0}, "std": {"10": 1.5, "20": 1.0, "40": 0.5},
                      "seconds_per_run": 0.2},
        "optuna-tpe": {"mean": {"10": 87.0, "20": 89.9, "40": 91.1}, "std": {"10": 2.0, "20": 1.2, "40": 0.9},
                       "seconds_per_run": 9.8},
    },
}


def test_writes_an_html_page_with_every_method(tmp_path):
    source = tmp_path / "results.json"
    source.write_text(json.dumps(RESULTS))
    out = plot_curves(source, tmp_path / "plots" / "curves.html", log_x=True)
    html = out.read_text()
    assert out == tmp_path / "plots" / "curves.html"
    assert all(f'"name":"{name}"' in html for name in RESULTS["methods"])
    assert '"type":"log"' in html and "toself" in html  # log axis, std bands


def test_command_writes_beside_the_results_and_names_a_missing_field(tmp_path, capsys):
    source = tmp_path / "nb201_strategies.json"
    source.write_text(json.dumps(RESULTS))
    main([str(source)])
    assert (tmp_path / "nb201_strategies.html").is_file()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"budgets": [10], "methods": {"random": {"mean": {"10": 80.0}}}}))
    with pytest.raises(SystemExit):
        main([str(broken)])
    assert "random: no 'std' field" in capsys.readouterr().err
