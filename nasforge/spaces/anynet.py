"""AnyNetX design spaces (Radosavovic et al., 2020, "Designing Network Design Spaces") and the network
builder they share with RegNet.

A network is pycls's AnyNet: a stride-2 3x3 stem of `stem` channels, stages of residual bottleneck
blocks (`ResBottleneck`; the first block of each stage has stride 2), global average pooling and a
linear classifier. Stage i has depth d_i, width w_i, bottleneck ratio b_i and group width g_i.
The paper's progression constrains the free AnyNetX-A space step by step:

- `anynet_a`: every stage picks its own d, w, b, g;
- `anynet_b`: one b shared by all stages;
- `anynet_c`: one b and one g shared by all stages;
- `anynet_d`: as C, with non-decreasing widths;
- `anynet_e`: as D, with non-decreasing depths.

JSON form (the same at every level, so an AnyNetX-E arch is also an AnyNetX-A arch)::

    {"stages": [{"d": 1, "w": 32, "b": 1, "g": 8}, {"d": 2, "w": 64, "b": 1, "g": 8}, ...]}

Any positive integers are accepted (subject to the level's constraints); the space's options set the
grid that `sample`, `mutate` and `neighbors` move on, sized by default for small inputs (digits,
CIFAR). As in pycls, a width and group width are made compatible when the network is built: the
group width is capped at the bottleneck width w/b, which is rounded to a multiple of it
(`compatible`), so several archs may build the same network (`canonical_key` says which).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.spaces.base import Arch, Encodable, Mutable, Scalable, SearchSpace, check_scale
from nasforge.spaces.blocks import ConvBNAct, ResBottleneck

__all__ = ["AnyNetSpace", "AnyNetXA", "AnyNetXB", "AnyNetXC", "AnyNetXD", "AnyNetXE", "Stage", "build_anynet",
           "compatible"]

FIELDS = ("d", "w", "b", "g")


@dataclass(frozen=True)
class Stage:
    """One stage: `depth` blocks of `width` output channels, bottleneck ratio `bottleneck` (inner width
    width / bottleneck), `group_width` channels per group of the 3x3 conv and SE ratio `se` (0: none)."""

    depth: int
    width: int
    bottleneck: float
    group_width: int
    se: float = 0.0


def compatible(stage: Stage) -> Stage:
    """`stage` with its widths made compatible as pycls's `adjust_block_compatibility` does: the group
    width is capped at the inner width w/b, the inner width rounded to a multiple of it, w = inner * b."""
    inner = max(1, int(stage.width / stage.bottleneck))
    group = min(stage.group_width, inner)
    inner = max(group, int(round(inner / group) * group))
    return Stage(stage.depth, int(inner * stage.bottleneck), stage.bottleneck, group, stage.se)


def build_anynet(stages: Sequence[Stage], input_shape: tuple[int, ...], num_classes: int, *, stem: int = 32,
                 stem_stride: int = 2) -> nn.Module:
    """pycls's AnyNet: stem (3x3 conv, `stem_stride`, BN, ReLU), the (compatible) stages, pooling and the classifier."""
    if len(input_shape) != 3 or not all(type(n) is int and n >= 1 for n in input_shape):
        raise NasforgeError(f"input_shape: expected (C, H, W) of positive integers, got {tuple(input_shape)!r}")
    if type(num_classes) is not int or num_classes < 1:
        raise NasforgeError(f"num_classes: expected a positive integer, got {num_classes!r}")
    layers: list[nn.Module] = [ConvBNAct(input_shape[0], stem, 3, stem_stride)]
    c = stem
    for stage in map(compatible, stages):
        for i in range(stage.depth):
            layers.append(ResBottleneck(c, stage.width, 2 if i == 0 else 1, stage.bottleneck, stage.group_width, stage.se))
            c = stage.width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


def stages_key(stages: Sequence[Stage]) -> str:
    """A canonical text of the network `stages` build (after `compatible`): equal text, equal network."""
    return Arch.of("", [[s.depth, s.width, s.bottleneck, s.group_width, s.se] for s in map(compatible, stages)]).key


def scaled_width(width: float, factor: float) -> int:
    """`width` x `factor` rounded to a multiple of 8 channels, at least 8."""
    return max(8, int(round(width * factor / 8)) * 8)


def positive_int(field: str, value: Any) -> int:
    if type(value) is not int or value < 1:
        raise NasforgeError(f"{field}: expected a positive integer, got {value!r}")
    return value


def grid(field: str, values: Any) -> tuple[int, ...]:
    """A space option: a non-empty list of distinct positive integers, sorted."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise NasforgeError(f"{field}: expected a non-empty list of positive integers, got {values!r}")
    for value in values:
        positive_int(field, value)
    if len(set(values)) != len(values):
        raise NasforgeError(f"{field}: options must be distinct, got {list(values)}")
    return tuple(sorted(values))


def non_decreasing(rng: np.random.Generator, n: int, k: int) -> list[int]:
    """A uniformly random non-decreasing sequence of `k` indices into `n` options (stars and bars: a
    k-subset of n + k - 1 slots, sorted, minus 0..k-1, is a multiset of k of n, one to one)."""
    picks = np.sort(rng.choice(n + k - 1, size=k, replace=False))
    return [int(p) - i for i, p in enumerate(picks)]


class AnyNetSpace(SearchSpace, Mutable, Encodable, Scalable):
    """An AnyNetX space of `stages` stages sampled from the grids `depths`, `widths`, `bottlenecks`
    and `group_widths`, under the constraints of its level (the subclasses)."""

    name = "anynet_a"
    shared_b = shared_g = increasing_w = increasing_d = False

    def __init__(self, *, stages: int = 4, depths: Sequence[int] = (1, 2, 3, 4),
                 widths: Sequence[int] = tuple(range(8, 129, 8)), bottlenecks: Sequence[int] = (1, 2, 4),
                 group_widths: Sequence[int] = (1, 2, 4, 8, 16), stem: int = 32, stem_stride: int = 2) -> None:
        self.stages = positive_int("stages", stages)
        self.grids = {"d": grid("depths", depths), "w": grid("widths", widths), "b": grid("bottlenecks", bottlenecks),
                      "g": grid("group_widths", group_widths)}
        self.stem = positive_int("stem", stem)
        if stem_stride not in (1, 2) or type(stem_stride) is not int:
            raise NasforgeError(f"stem_stride: {stem_stride!r} is not allowed (allowed: 1, 2)")
        self.stem_stride = stem_stride
        self.options = {"stages": stages, "depths": list(self.grids["d"]), "widths": list(self.grids["w"]),
                        "bottlenecks": list(self.grids["b"]), "group_widths": list(self.grids["g"]),
                        "stem": stem, "stem_stride": stem_stride}

    # --- the arch as four per-stage lists -------------------------------------------------------
    def _lists(self, arch: Arch) -> dict[str, list[int]]:
        stages = self.check(arch).value["stages"]
        return {f: [s[f] for s in stages] for f in FIELDS}

    def _arch(self, lists: dict[str, list[int]]) -> Arch:
        return Arch.of(self.name, {"stages": [{f: lists[f][i] for f in FIELDS} for i in range(self.stages)]})

    def _violation(self, lists: dict[str, list[int]]) -> str | None:
        """The first constraint of the level that `lists` breaks, as an error text; None when it keeps them all."""
        rules = [("b", self.shared_b, "one b shared by all stages"), ("g", self.shared_g, "one g shared by all stages")]
        for field, on, rule in rules:
            if on and len(set(lists[field])) > 1:
                return f"arch.stages[*].{field}: {lists[field]} breaks the rule of {self.name}: {rule}"
        rules = [("w", self.increasing_w, "non-decreasing widths"), ("d", self.increasing_d, "non-decreasing depths")]
        for field, on, rule in rules:
            values = lists[field]
            if on and any(a > b for a, b in zip(values, values[1:])):
                return f"arch.stages[*].{field}: {values} breaks the rule of {self.name}: {rule}"
        return None

    def stage_list(self, arch: Arch) -> list[Stage]:
        """The stages `arch` describes (before `compatible`)."""
        lists = self._lists(arch)
        return [Stage(*(lists[f][i] for f in FIELDS)) for i in range(self.stages)]

    # --- SearchSpace ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        n = {f: len(values) for f, values in self.grids.items()}
        k = self.stages

        def per_stage(field: str, increasing: bool) -> int:
            return math.comb(n[field] + k - 1, k) if increasing else n[field] ** k

        shared = (n["b"] if self.shared_b else n["b"] ** k) * (n["g"] if self.shared_g else n["g"] ** k)
        return shared * per_stage("d", self.increasing_d) * per_stage("w", self.increasing_w)

    def sample(self, rng: np.random.Generator) -> Arch:
        """Uniform over the level's grid: shared fields drawn once, ordered ones as uniform non-decreasing sequences."""
        lists = {}
        for field, shared, increasing in (("d", False, self.increasing_d), ("w", False, self.increasing_w),
                                          ("b", self.shared_b, False), ("g", self.shared_g, False)):
            options = self.grids[field]
            if increasing:
                picks = non_decreasing(rng, len(options), self.stages)
            elif shared:
                picks = [int(rng.integers(len(options)))] * self.stages
            else:
                picks = [int(x) for x in rng.integers(len(options), size=self.stages)]
            lists[field] = [options[p] for p in picks]
        return self._arch(lists)

    def validate(self, value: Any) -> Arch:
        if not isinstance(value, dict) or set(value) != {"stages"}:
            raise NasforgeError(f"arch: expected an object with the key stages, got {value!r}")
        stages = value["stages"]
        if not isinstance(stages, list) or len(stages) != self.stages:
            raise NasforgeError(f"arch.stages: expected a list of {self.stages} stages, got {stages!r}")
        for i, stage in enumerate(stages):
            if not isinstance(stage, dict) or set(stage) != set(FIELDS):
                raise NasforgeError(f"arch.stages[{i}]: expected an object with keys {', '.join(FIELDS)}, got {stage!r}")
            for f in FIELDS:
                positive_int(f"arch.stages[{i}].{f}", stage[f])
        lists = {f: [s[f] for s in stages] for f in FIELDS}
        problem = self._violation(lists)
        if problem:
            raise NasforgeError(problem)
        return self._arch(lists)

    def build(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return build_anynet(self.stage_list(arch), input_shape, num_classes, stem=self.stem, stem_stride=self.stem_stride)

    def canonical_key(self, arch: Arch) -> str:
        return stages_key(self.stage_list(arch))

    def scale(self, arch: Arch, depth: float, width: float) -> tuple[dict[str, Any], Arch]:
        """Every stage's depth x `depth` (rounded, at least 1) and width x `width` (to a multiple of 8);
        b and g are kept. Both maps keep order, so the level's rules still hold."""
        check_scale(depth, width)
        lists = self._lists(arch)
        lists["d"] = [max(1, int(round(d * depth))) for d in lists["d"]]
        lists["w"] = [scaled_width(w, width) for w in lists["w"]]
        return dict(self.options), self._arch(lists)

    # --- Mutable / Encodable --------------------------------------------------------------------
    def _moves(self) -> list[tuple[str, list[int]]]:
        """The (field, stages) that one move changes together: a shared field is one move over all stages."""
        moves = []
        for f in FIELDS:
            if (f == "b" and self.shared_b) or (f == "g" and self.shared_g):
                moves.append((f, list(range(self.stages))))
            else:
                moves += [(f, [i]) for i in range(self.stages)]
        return moves

    def _moved(self, lists: dict[str, list[int]], field: str, where: list[int], value: int) -> dict[str, list[int]] | None:
        changed = {f: list(v) for f, v in lists.items()}
        for i in where:
            changed[field][i] = value
        return None if changed == lists or self._violation(changed) else changed

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """One field (of one stage, or a shared one) set to another value of its grid, keeping the level's rules."""
        lists = self._lists(arch)
        moves = self._moves()
        for _ in range(1000):
            field, where = moves[int(rng.integers(len(moves)))]
            options = self.grids[field]
            changed = self._moved(lists, field, where, options[int(rng.integers(len(options)))])
            if changed is not None:
                return self._arch(changed)
        raise NasforgeError(f"space '{self.name}': no move keeps {arch.key} in the space")

    def neighbors(self, arch: Arch) -> list[Arch]:
        """Each field moved to the next grid value below and above its value, where the rules allow."""
        lists = self._lists(arch)
        found, seen = [], {arch.key}
        for field, where in self._moves():
            current = lists[field][where[0]]
            options = self.grids[field]
            lower = [v for v in options if v < current]
            higher = [v for v in options if v > current]
            for value in lower[-1:] + higher[:1]:
                changed = self._moved(lists, field, where, value)
                if changed is not None:
                    child = self._arch(changed)
                    if child.key not in seen:
                        seen.add(child.key)
                        found.append(child)
        return found

    def encode(self, arch: Arch) -> np.ndarray:
        """Per stage: d, log2 w, log2 b, log2 g (4 x stages floats)."""
        lists = self._lists(arch)
        rows = [[lists["d"][i], math.log2(lists["w"][i]), math.log2(lists["b"][i]), math.log2(lists["g"][i])]
                for i in range(self.stages)]
        return np.asarray(rows, dtype=np.float32).ravel()


class AnyNetXA(AnyNetSpace):
    """AnyNetX-A: free per-stage depth, width, bottleneck ratio and group width."""

    name = "anynet_a"


class AnyNetXB(AnyNetSpace):
    """AnyNetX-B: AnyNetX-A with one bottleneck ratio shared by all stages."""

    name = "anynet_b"
    shared_b = True


class AnyNetXC(AnyNetXB):
    """AnyNetX-C: AnyNetX-B with one group width shared by all stages."""

    name = "anynet_c"
    shared_g = True


class AnyNetXD(AnyNetXC):
    """AnyNetX-D: AnyNetX-C with non-decreasing stage widths."""

    name = "anynet_d"
    increasing_w = True


class AnyNetXE(AnyNetXD):
    """AnyNetX-E: AnyNetX-D with non-decreasing stage depths."""

    name = "anynet_e"
    increasing_d = True
