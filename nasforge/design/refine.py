"""From the best models of a design space to a smaller one: the refinement step of Radosavovic et al.
(2020), which turned AnyNetX-E into RegNet. The per-block widths of each top model are fitted with
the quantized linear rule (`fit_regnet`: how well the rule explains them, and with which w0, wa, wm),
and the bottleneck ratios and group widths the top models use are read off; the result is the RegNet
space those values span, as options for `create_space("regnet", ...)`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.spaces.anynet import AnyNetSpace, compatible
from nasforge.spaces.base import Arch
from nasforge.spaces.regnet import RegNetSpace, fit_regnet

__all__ = ["Refinement", "refine"]


@dataclass(frozen=True)
class Refinement:
    """What the `top` best models of a space share. `fits` holds (w0, wa, wm, e_fit) per top model;
    `bottleneck` / `group_width` count the values over their blocks; `options` span a RegNet space."""

    top: int
    fits: list[tuple[int, float, float, float]]
    depths: list[int]
    bottleneck: dict[int, int]
    group_width: dict[int, int]
    options: dict[str, Any]

    @property
    def median_fit_error(self) -> float:
        """The median e_fit (mean |log width ratio|) of the top models: small when a linear rule explains them."""
        return float(np.median([f[3] for f in self.fits]))


def refine(space: AnyNetSpace | RegNetSpace, archs: Sequence[Arch], errors: Sequence[float], *,
           top: float = 0.25) -> Refinement:
    """The `top` share (at least one) of `archs` by lowest error, fitted and summarised (see the module)."""
    if not isinstance(space, (AnyNetSpace, RegNetSpace)):
        raise NasforgeError(f"space: '{space.name}' has no stages to refine (allowed: anynet_a..anynet_e, regnet)")
    if len(archs) != len(errors) or not archs:
        raise NasforgeError(f"errors: expected one error per arch ({len(archs)}), got {len(errors)}")
    if not 0 < top <= 1:
        raise NasforgeError(f"top: must be in (0, 1], got {top}")
    order = np.argsort(np.asarray(errors, dtype=float), kind="stable")
    best = [archs[i] for i in order[: max(1, int(round(top * len(archs))))]]
    fits, depths, bottlenecks, groups = [], [], Counter(), Counter()
    for arch in best:
        stages = [compatible(s) for s in space.stage_list(arch)]
        widths = [s.width for s in stages for _ in range(s.depth)]
        fit = fit_regnet(widths)
        fits.append((fit.w0, fit.wa, fit.wm, fit.error))
        depths.append(len(widths))
        for s in stages:  # counted per block
            bottlenecks[int(s.bottleneck)] += s.depth
            groups[s.group_width] += s.depth
    w0s, was, wms = ([f[i] for f in fits] for i in range(3))
    options = {"depth": [min(depths), max(depths)], "w0": [min(w0s), max(w0s)],
               "wa": [max(0.01, min(was)), max(0.01, max(was))], "wm": [max(1.01, min(wms)), max(1.01, max(wms))],
               "bottlenecks": [bottlenecks.most_common(1)[0][0]], "group_widths": sorted(groups)}
    return Refinement(len(best), fits, depths, dict(bottlenecks), dict(groups), options)
