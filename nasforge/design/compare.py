"""Compare design spaces by their error EDFs (Radosavovic et al., 2020): sample `n` models of each
space whose FLOPs fall in a common range (rejection sampling with a seeded generator), train each
briefly with the `TrainingEstimator`, and report each space's EDF, its `edf_area` over the errors'
common range (also with `complexity_weights`), an EDF plot and, for AnyNet / RegNet spaces, the
refinement its best quarter suggests.

Errors are validation errors in percent (100 - val_acc): the test split is reported, never compared.

Example::

    from nasforge.data import load_dataset
    from nasforge.spaces import create_space
    results = compare_spaces({n: create_space(n) for n in ("anynet_a", "regnet")}, load_dataset("digits"),
                             n=10, epochs=2, flops_range=(1e5, 2e6), seed=0)
    summary = write_comparison(results, "out/")
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from nasforge.data.datasets import Dataset
from nasforge.design.edf import complexity_weights, edf, edf_area
from nasforge.errors import NasforgeError
from nasforge.estimators.training import TrainingEstimator
from nasforge.hardware.counting import count_flops
from nasforge.spaces.anynet import AnyNetSpace
from nasforge.spaces.base import Arch, SearchSpace
from nasforge.spaces.regnet import RegNetSpace

__all__ = ["SpaceResult", "compare_spaces", "markdown", "plot_edfs", "sample_in_flops", "summarize", "write_comparison"]


@dataclass
class SpaceResult:
    """The trained sample of one space: per model its arch, validation and test error (%), FLOPs,
    parameters and training seconds; `failed` holds (arch key, error text) of models that did not
    train; `draws` is how many samples the FLOPs range took to find them."""

    space: SearchSpace
    archs: list[Arch] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    test_errors: list[float] = field(default_factory=list)
    flops: list[int] = field(default_factory=list)
    params: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    draws: int = 0


def sample_in_flops(space: SearchSpace, n: int, rng: np.random.Generator, input_shape: tuple[int, ...],
                    num_classes: int, flops_range: tuple[float, float], *, max_draws: int | None = None,
                    ) -> tuple[list[tuple[Arch, int]], int]:
    """`n` distinct archs of `space` with FLOPs (nasforge's count, batch 1) in `flops_range`, drawn
    with `rng`, and the number of draws; too few in `max_draws` (default 100 n) is an error."""
    low, high = flops_range
    limit = max_draws or 100 * n
    found: dict[str, tuple[Arch, int]] = {}
    draws = 0
    while len(found) < n:
        if draws == limit:
            raise NasforgeError(f"flops_range: only {len(found)} of {limit} samples of space '{space.name}' have "
                                f"FLOPs in [{low:g}, {high:g}] (need {n}); widen the range")
        arch = space.sample(rng)
        draws += 1
        if arch.key not in found:
            flops = count_flops(space.build(arch, input_shape, num_classes), input_shape)
            if low <= flops <= high:
                found[arch.key] = (arch, flops)
    return list(found.values()), draws


def compare_spaces(spaces: Mapping[str, SearchSpace], data: Dataset, *, n: int = 20, epochs: int = 3,
                   flops_range: tuple[float, float], seed: int = 0, batch_size: int = 64,
                   threads: int | None = None, progress: Callable[[str], None] | None = None,
                   ) -> dict[str, SpaceResult]:
    """Sample and train `n` models per space (see the module); each space draws from its own generator,
    seeded by `seed` and its name, so adding a space leaves the others' samples as they were."""
    if type(n) is not int or n < 1:
        raise NasforgeError(f"n: must be a whole number >= 1, got {n!r}")
    if not spaces:
        raise NasforgeError("spaces: name at least one space")
    low, high = flops_range
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low < high):
        raise NasforgeError(f"flops_range: expected 0 <= low < high, got {low:g},{high:g}")
    results = {}
    for name, space in spaces.items():
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        chosen, draws = sample_in_flops(space, n, rng, data.input_shape, data.num_classes, flops_range)
        estimator = TrainingEstimator(space=space, data=data, epochs=epochs, batch_size=batch_size, seed=seed,
                                      latency=False, threads=threads)
        result = results[name] = SpaceResult(space, draws=draws)
        for i, (arch, flops) in enumerate(chosen):
            try:
                trained = estimator.evaluate(arch)
            except (FloatingPointError, NasforgeError, RuntimeError) as error:  # recorded; the comparison goes on
                result.failed.append((arch.key, f"{type(error).__name__}: {error}".splitlines()[0]))
                continue
            m = trained.metrics
            result.archs.append(arch)
            result.errors.append(100.0 - m["val_acc"])
            result.test_errors.append(100.0 - m["test_acc"])
            result.flops.append(flops)
            result.params.append(int(m["params"]))
            result.seconds.append(trained.cost_s)
            if progress is not None:
                progress(f"{name} {i + 1}/{n}: val error {100 - m['val_acc']:.2f} %, {flops / 1e6:.2f} MFLOPs, "
                         f"{trained.cost_s:.1f} s")
    return results


def error_range(results: Mapping[str, SpaceResult]) -> tuple[float, float]:
    """[floor of the lowest, ceiling of the highest] error of all spaces (at least 1 pp wide)."""
    errors = [e for r in results.values() for e in r.errors]
    if not errors:
        raise NasforgeError("spaces: no model trained, nothing to compare (see the failures)")
    low, high = math.floor(min(errors)), math.ceil(max(errors))
    return float(low), float(max(high, low + 1))


def summarize(results: Mapping[str, SpaceResult], *, top: float = 0.25) -> dict:
    """The JSON summary: per space its models, the EDF areas over the common error range, and the refinement."""
    from nasforge.design.refine import refine

    low, high = error_range(results)
    summary: dict = {"error_range": [low, high], "spaces": {}, "edf_area": {}, "edf_area_weighted": {}, "refinement": {}}
    for name, r in results.items():
        summary["spaces"][name] = {"errors": r.errors, "test_errors": r.test_errors, "flops": r.flops,
                                   "params": r.params, "seconds": r.seconds, "archs": [a.value for a in r.archs],
                                   "failed": [list(f) for f in r.failed], "draws": r.draws}
        if not r.errors:
            continue
        summary["edf_area"][name] = edf_area(r.errors, low, high)
        summary["edf_area_weighted"][name] = edf_area(r.errors, low, high, complexity_weights(r.flops))
        if isinstance(r.space, (AnyNetSpace, RegNetSpace)):
            found = refine(r.space, r.archs, r.errors, top=top)
            summary["refinement"][name] = {"top": found.top, "median_fit_error": found.median_fit_error,
                                           "bottleneck": found.bottleneck, "group_width": found.group_width,
                                           "regnet_options": found.options}
    return summary


def markdown(summary: dict) -> str:
    """The comparison table: one row per space."""
    low, high = summary["error_range"]
    lines = [f"| space | models | failed | min err % | median err % | EDF area [{low:g}, {high:g}] | weighted area "
             "| median MFLOPs | accepted draws | top-quarter e_fit |", "|" + "---|" * 10]
    for name, s in summary["spaces"].items():
        errors = s["errors"]
        refined = summary["refinement"].get(name)
        cells = [name, len(errors), len(s["failed"])]
        if errors:
            cells += [f"{min(errors):.2f}", f"{np.median(errors):.2f}", f"{summary['edf_area'][name]:.3f}",
                      f"{summary['edf_area_weighted'][name]:.3f}", f"{np.median(s['flops']) / 1e6:.2f}"]
        else:
            cells += ["-"] * 5
        cells += [f"{len(errors) + len(s['failed'])}/{s['draws']}", f"{refined['median_fit_error']:.3f}" if refined else "-"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def plot_edfs(summary: dict, path: Path) -> None:
    """The EDF of each space (solid) and its complexity-weighted EDF (dotted) as a plotly HTML file."""
    import plotly.graph_objects as go

    low, high = summary["error_range"]
    grid = np.linspace(low, high, 400)
    figure = go.Figure()
    for name, s in summary["spaces"].items():
        if not s["errors"]:
            continue
        area = summary["edf_area"][name]
        figure.add_scatter(x=grid, y=edf(s["errors"], grid), mode="lines", name=f"{name} (n={len(s['errors'])}, area {area:.3f})")
        figure.add_scatter(x=grid, y=edf(s["errors"], grid, complexity_weights(s["flops"])), mode="lines",
                           line={"dash": "dot"}, name=f"{name}, FLOPs-weighted", visible="legendonly")
    figure.update_layout(title="Error EDFs: share of models with validation error < e", xaxis_title="validation error (%)",
                         yaxis_title="cumulative prob.", yaxis_range=[0, 1])
    figure.write_html(path, include_plotlyjs="cdn")


def write_comparison(results: Mapping[str, SpaceResult], out_dir: str | Path) -> dict:
    """Write `comparison.json`, `comparison.md` and `edf.html` under `out_dir`; return the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(results)
    (out / "comparison.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "comparison.md").write_text(markdown(summary) + "\n")
    plot_edfs(summary, out / "edf.html")
    return summary
