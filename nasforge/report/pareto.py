"""The Pareto plot of a multi-objective run: every finished trial, the front highlighted, one panel per cost.

The first metric of the objective (accuracy) is the y axis of each panel; each further metric (latency,
FLOPs, params) is the x axis of one panel. With two metrics the front is drawn as the step line that
bounds what it dominates.
Plotly writes one HTML file; plotly.js comes from its CDN when the page is opened, so the file stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nasforge.objective import Objective
from nasforge.runner.store import Trial

__all__ = ["pareto_figure", "write_pareto_plot"]


def pareto_figure(trials: Sequence[Trial], front: Sequence[Trial], objective: Objective) -> go.Figure:
    """A scatter of `trials` (metric 0 against each other metric of `objective`), `front` highlighted."""
    first, *others = objective.names
    figure = make_subplots(rows=1, cols=len(others), shared_yaxes=True)
    front_ids = {t.id for t in front}
    rest = [t for t in trials if t.id not in front_ids]
    for column, metric in enumerate(others, start=1):
        for group, name, style in ((rest, "trials", {"color": "lightgray", "size": 6}),
                                   (sorted(front, key=lambda t: t.result.metrics[metric]), "Pareto front",
                                    {"color": "crimson", "size": 9})):
            figure.add_trace(go.Scatter(
                x=[t.result.metrics[metric] for t in group], y=[t.result.metrics[first] for t in group],
                mode="markers+lines" if name == "Pareto front" and len(others) == 1 else "markers",
                line={"shape": "hv", "color": style["color"]}, marker=style, name=name,
                text=[f"trial {t.id}: {t.arch.key}" for t in group], showlegend=column == 1,
            ), row=1, col=column)
        figure.update_xaxes(title_text=metric, row=1, col=column)
    figure.update_yaxes(title_text=first, row=1, col=1)
    figure.update_layout(title=f"{len(front)} Pareto-optimal of {len(trials)} trials", template="plotly_white")
    return figure


def write_pareto_plot(path: str | Path, trials: Sequence[Trial], front: Sequence[Trial], objective: Objective) -> Path:
    """Write `pareto_figure` as an HTML page at `path`; returns the path."""
    path = Path(path)
    pareto_figure(trials, front, objective).write_html(path, include_plotlyjs="cdn")
    return path
