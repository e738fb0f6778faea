"""Plot a strategy benchmark: mean test accuracy of the best-validation architecture vs queries, ± std.

    python benchmarks/plot_curves.py benchmarks/results/nb201_strategies.json [--out PATH] [--log-x]

Reads the JSON `nb201_strategies.py` writes — `{"budgets": [...], "methods": {NAME: {"mean": {BUDGET: acc},
"std": {BUDGET: acc}, "seconds_per_run": s}}}`, optionally `oracle_test_acc` — and writes one interactive
plotly page (plotly.js from its CDN, so the file stays small) beside it, with the same name ending in .html.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative


def plot_curves(results_json_path: str | Path, out_html_path: str | Path, *, log_x: bool = False) -> Path:
    """Write the curves of every method in the results file as an HTML page; returns its path."""
    results = json.loads(Path(results_json_path).read_text())
    budgets = _field(results, "budgets", "the results")
    figure = go.Figure()
    for index, (name, method) in enumerate(_field(results, "methods", "the results").items()):
        # JSON object keys are text: budget 25 is stored under "25"
        mean = [_field(_field(method, "mean", name), str(b), f"{name}.mean") for b in budgets]
        std = [_field(_field(method, "std", name), str(b), f"{name}.std") for b in budgets]
        color = qualitative.Plotly[index % len(qualitative.Plotly)]
        upper = [m + s for m, s in zip(mean, std, strict=True)]
        lower = [m - s for m, s in zip(mean, std, strict=True)]
        band = upper + lower[::-1]  # around the curve and back: one closed polygon
        figure.add_trace(go.Scatter(x=budgets + budgets[::-1], y=band, fill="toself", fillcolor=color, opacity=0.2,
                                    line={"width": 0}, legendgroup=name, showlegend=False, hoverinfo="skip"))
        seconds = method.get("seconds_per_run")
        figure.add_trace(go.Scatter(
            x=budgets, y=mean, customdata=std, mode="lines+markers", name=name, legendgroup=name, line={"color": color},
            hovertemplate=f"{name}: %{{y:.2f}} ± %{{customdata:.2f}} % after %{{x}} queries"
                          + (f"<br>{seconds:.3g} s per run" if seconds is not None else "") + "<extra></extra>"))
    if "oracle_test_acc" in results:  # the test accuracy of the best-validation architecture of the whole table
        figure.add_hline(y=results["oracle_test_acc"], line_dash="dot", line_color="gray", annotation_text="oracle")
    axis_types = [("linear x", "linear"), ("log x", "log")]
    figure.update_layout(
        title="Test accuracy of the best-validation architecture found (mean ± std over seeds)",
        xaxis={"title": "queries", "type": "log" if log_x else "linear"}, yaxis={"title": "test accuracy (%)"},
        hovermode="x unified", template="plotly_white",
        updatemenus=[{"type": "buttons", "direction": "right", "x": 1.0, "y": 1.12, "active": int(log_x),
                      "buttons": [{"label": label, "method": "relayout", "args": [{"xaxis.type": kind}]}
                                  for label, kind in axis_types]}])
    out = Path(out_html_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(out, include_plotlyjs="cdn")  # a small file; plotly.js comes from its CDN when opened
    return out


def _field(mapping: Any, name: str, where: str) -> Any:
    """`mapping[name]`, or a one-line error saying what the results file lacks."""
    if not isinstance(mapping, dict) or name not in mapping:
        raise ValueError(f"{where}: no '{name}' field (expected the JSON of benchmarks/nb201_strategies.py)")
    return mapping[name]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="a benchmark's results JSON")
    p.add_argument("--out", type=Path, help="the HTML page (default: the results path ending in .html)")
    p.add_argument("--log-x", action="store_true", help="start with a logarithmic queries axis")
    args = p.parse_args(argv)
    try:
        out = plot_curves(args.results, args.out or args.results.with_suffix(".html"), log_x=args.log_x)
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        p.error(str(error))
    print(out)


if __name__ == "__main__":
    main()
