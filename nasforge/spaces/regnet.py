"""The RegNet design space (Radosavovic et al., 2020, "Designing Network Design Spaces"): AnyNet
networks whose per-block widths follow a quantized linear rule.

Block j of d has the linear width u_j = w0 + wa * j; with s_j = round(log(u_j / w0) / log(wm)) its
width is w0 * wm^s_j rounded to a multiple of 8, and consecutive blocks of equal width form a stage
(pycls's `generate_regnet`). Every block has bottleneck ratio b and group width g (made compatible
with the width as pycls does, `compatible`) and, for RegNetY, squeeze-and-excitation with ratio `se`
of the block's input width. The network is `build_anynet`'s, so RegNetX-400MF is

    {"d": 22, "w0": 24, "wa": 24.48, "wm": 2.54, "g": 16, "b": 1, "se": 0}

with stage depths [1, 2, 7, 12] and widths [32, 64, 160, 384], and RegNetY-400MF is
``{"d": 16, "w0": 48, "wa": 27.89, "wm": 2.09, "g": 8, "b": 1, "se": 0.25}``.

The JSON form takes any d >= 1, w0 >= 1 (sampled as a multiple of 8, as pycls requires; any w0
works, since every width is rounded to a multiple of 8, and compound scaling needs finer steps), wa >= 0, wm > 1, g >= 1, b >= 1 and
0 <= se < 1 that give at most `max_stages` stages; the space's options are the ranges that `sample`,
`mutate` and `neighbors` move in (small by default, for digits- and CIFAR-sized inputs), and `size`
counts the points of that sampling grid (wa and wm in steps of 0.01).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.spaces.anynet import Stage, build_anynet, positive_int, stages_key
from nasforge.spaces.base import Arch, Encodable, Mutable, Scalable, SearchSpace, check_scale, json_object

__all__ = ["RegNetFit", "RegNetSpace", "fit_regnet", "regnet_stages", "regnet_widths"]

KEYS = ("d", "w0", "wa", "wm", "g", "b", "se")
QUANTUM = 8  # widths are multiples of 8 channels (pycls's q)


def regnet_widths(d: int, w0: int, wa: float, wm: float, quantum: int = QUANTUM) -> list[int]:
    """The per-block widths of the quantized linear rule (pycls's `generate_regnet`), at least `quantum`
    (a w0 below quantum / 2, which scaling can reach, would otherwise round to 0 channels)."""
    u = w0 + wa * np.arange(d)
    s = np.round(np.log(u / w0) / np.log(wm))
    return [int(w) for w in np.maximum(1, np.round(w0 * np.power(wm, s) / quantum)).astype(int) * quantum]


def regnet_stages(value: dict[str, Any]) -> list[Stage]:
    """The stages of a RegNet arch's JSON form: runs of equal block width, before `compatible`."""
    stages: list[Stage] = []
    for width in regnet_widths(value["d"], value["w0"], value["wa"], value["wm"]):
        if stages and stages[-1].width == width:
            stages[-1] = Stage(stages[-1].depth + 1, width, value["b"], value["g"], value["se"])
        else:
            stages.append(Stage(1, width, value["b"], value["g"], value["se"]))
    return stages


@dataclass(frozen=True)
class RegNetFit:
    """The (w0, wa, wm) whose quantized widths come closest to given per-block widths; `error` is the
    paper's e_fit, the mean |log(fitted / given)| over the blocks (0: reproduced exactly)."""

    w0: int
    wa: float
    wm: float
    error: float


def fit_regnet(widths: Sequence[int]) -> RegNetFit:
    """Fit the quantized linear rule to per-block `widths` by grid search (the paper fits by grid too):
    w0 over multiples of 8 up to twice the first width, wa in steps of 0.5 up to the largest width, wm
    in steps of 0.01 over (1, 3], then wa and wm refined in steps of 0.01 around the best."""
    target = np.asarray(widths, dtype=float)
    if target.ndim != 1 or len(target) == 0 or (target <= 0).any():
        raise NasforgeError(f"widths: expected a non-empty list of positive widths, got {list(widths)!r}")
    j = np.arange(len(target))

    def search(w0s: np.ndarray, was: np.ndarray, wms: np.ndarray) -> tuple[float, int, float, float]:
        best = (math.inf, 0, 0.0, 0.0)
        for w0 in w0s:
            u = w0 + was[:, None, None] * j  # (wa, 1, block)
            s = np.round(np.log(u / w0) / np.log(wms)[None, :, None])  # (wa, wm, block)
            fitted = np.maximum(QUANTUM, np.round(w0 * wms[None, :, None] ** s / QUANTUM) * QUANTUM)
            error = np.abs(np.log(fitted / target)).mean(-1)
            a, m = np.unravel_index(int(np.argmin(error)), error.shape)
            if error[a, m] < best[0] - 1e-12:
                best = (float(error[a, m]), int(w0), float(was[a]), float(wms[m]))
        return best

    w0s = np.arange(QUANTUM, 2 * max(target[0], QUANTUM) + 1, QUANTUM)
    error, w0, wa, wm = search(w0s, np.arange(0.0, target.max() + 0.5, 0.5), np.arange(1.01, 3.0001, 0.01))
    error, w0, wa, wm = search(np.array([w0]), np.round(np.arange(max(0.0, wa - 0.5), wa + 0.505, 0.01), 2),
                               np.round(np.arange(max(1.01, wm - 0.05), wm + 0.0505, 0.01), 2))
    return RegNetFit(w0, round(wa, 2), round(wm, 2), error)


def _range(field: str, value: Any, low: float, integer: bool) -> tuple[float, float]:
    ok = isinstance(value, Sequence) and len(value) == 2 and all(
        type(v) is int or (not integer and type(v) is float and math.isfinite(v)) for v in value)
    if not ok or not low <= value[0] <= value[1]:
        kind = "integers" if integer else "numbers"
        raise NasforgeError(f"{field}: expected [low, high] {kind} with {low} <= low <= high, got {value!r}")
    return value[0], value[1]


def _options(field: str, values: Any, ok: Any, rule: str) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0 or not all(map(ok, values)):
        raise NasforgeError(f"{field}: expected a non-empty list of {rule}, got {values!r}")
    return tuple(sorted(set(values)))


class RegNetSpace(SearchSpace, Mutable, Encodable, Scalable):
    """RegNet: d in `depth`, w0 (multiple of 8) in `w0`, wa in `wa` (both log-uniform, as the paper
    samples them), wm in `wm`, g from `group_widths`, b from `bottlenecks` and se from `se`; archs
    with more than `max_stages` stages are outside. RegNetX is `se=(0,)`, RegNetY `se=(0.25,)`."""

    name = "regnet"

    def __init__(self, *, depth: Sequence[int] = (4, 16), w0: Sequence[int] = (8, 32), wa: Sequence[float] = (4.0, 32.0),
                 wm: Sequence[float] = (1.5, 3.0), group_widths: Sequence[int] = (1, 2, 4, 8, 16),
                 bottlenecks: Sequence[int] = (1,), se: Sequence[float] = (0.0,), max_stages: int = 4,
                 stem: int = 32, stem_stride: int = 2) -> None:
        self.depth = _range("depth", depth, 1, True)
        self.w0 = _range("w0", w0, QUANTUM, True)
        self.wa = _range("wa", wa, 0.01, False)
        self.wm = _range("wm", wm, 1.01, False)
        self.group_widths = _options("group_widths", group_widths, lambda v: type(v) is int and v >= 1, "positive integers")
        self.bottlenecks = _options("bottlenecks", bottlenecks, lambda v: type(v) is int and v >= 1, "positive integers")
        self.se = _options("se", se, lambda v: type(v) in (int, float) and 0 <= v < 1, "numbers in [0, 1)")
        self._choices = {"g": self.group_widths, "b": self.bottlenecks, "se": self.se}
        self.max_stages = positive_int("max_stages", max_stages)
        self.stem = positive_int("stem", stem)
        if stem_stride not in (1, 2) or type(stem_stride) is not int:
            raise NasforgeError(f"stem_stride: {stem_stride!r} is not allowed (allowed: 1, 2)")
        self.stem_stride = stem_stride
        self.options = {"depth": list(depth), "w0": list(w0), "wa": list(wa), "wm": list(wm),
                        "group_widths": list(self.group_widths), "bottlenecks": list(self.bottlenecks),
                        "se": list(self.se), "max_stages": max_stages, "stem": stem, "stem_stride": stem_stride}

    @property
    def size(self) -> int:
        steps = [self.depth[1] - self.depth[0] + 1, (self.w0[1] - self.w0[0]) // QUANTUM + 1,
                 round((self.wa[1] - self.wa[0]) * 100) + 1, round((self.wm[1] - self.wm[0]) * 100) + 1]
        return math.prod(steps) * len(self.group_widths) * len(self.bottlenecks) * len(self.se)

    def _draw(self, field: str, rng: np.random.Generator) -> Any:
        """A value of one field from the sampling distribution."""
        if field == "d":
            return int(rng.integers(self.depth[0], self.depth[1] + 1))
        if field == "w0":
            w0 = math.exp(rng.uniform(math.log(self.w0[0]), math.log(self.w0[1])))
            return int(min(max(round(w0 / QUANTUM) * QUANTUM, math.ceil(self.w0[0] / QUANTUM) * QUANTUM), self.w0[1]))
        if field == "wa":
            return round(math.exp(rng.uniform(math.log(self.wa[0]), math.log(self.wa[1]))), 2)
        if field == "wm":
            return round(float(rng.uniform(*self.wm)), 2)
        options = self._choices[field]
        return options[int(rng.integers(len(options)))]

    def _arch(self, value: dict[str, Any]) -> Arch | None:
        """The Arch of a (valid) value; None when it has more than `max_stages` stages."""
        value = {k: float(value[k]) if k in ("wa", "wm", "se") else value[k] for k in KEYS}
        if len(regnet_stages(value)) > self.max_stages:
            return None
        return Arch.of(self.name, value)

    def sample(self, rng: np.random.Generator) -> Arch:
        while True:  # a few draws give more than max_stages stages: drawn again
            arch = self._arch({k: self._draw(k, rng) for k in KEYS})
            if arch is not None:
                return arch

    def validate(self, value: Any) -> Arch:
        json_object(value, KEYS, "arch")

        def number(v: Any) -> bool:
            return type(v) in (int, float) and math.isfinite(v)

        rules = {"d": (lambda v: type(v) is int and v >= 1, "a positive integer"),
                 "w0": (lambda v: type(v) is int and v >= 1, "a positive integer"),
                 "wa": (lambda v: number(v) and v >= 0, "a number >= 0"),
                 "wm": (lambda v: number(v) and v > 1, "a number > 1"),
                 "g": (lambda v: type(v) is int and v >= 1, "a positive integer"),
                 "b": (lambda v: type(v) is int and v >= 1, "a positive integer"),
                 "se": (lambda v: number(v) and 0 <= v < 1, "a number in [0, 1), 0 for none")}
        for key, (ok, rule) in rules.items():
            if not ok(value[key]):
                raise NasforgeError(f"arch.{key}: expected {rule}, got {value[key]!r}")
        arch = self._arch(value)
        if arch is None:
            stages = len(regnet_stages(value))
            raise NasforgeError(f"arch: gives {stages} stages (allowed: at most max_stages = {self.max_stages})")
        return arch

    def stage_list(self, arch: Arch) -> list[Stage]:
        return regnet_stages(self.check(arch).value)

    def build(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return build_anynet(self.stage_list(arch), input_shape, num_classes, stem=self.stem, stem_stride=self.stem_stride)

    def canonical_key(self, arch: Arch) -> str:
        return stages_key(self.stage_list(arch))

    def scale(self, arch: Arch, depth: float, width: float) -> tuple[dict[str, Any], Arch]:
        """d x `depth` and w0 x `width` (rounded), wa x `width`, with wa also divided by the depth change so the
        blocks spread over the same widths (the width profile of block j / d is kept); wm is kept."""
        check_scale(depth, width)
        value = self.check(arch).value
        d = max(1, int(round(value["d"] * depth)))
        wa = round(value["wa"] * width * value["d"] / d, 2)
        return dict(self.options), self.validate(value | {"d": d, "w0": max(1, int(round(value["w0"] * width))), "wa": wa})

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """One field drawn again from its sampling distribution (another value, at most max_stages stages)."""
        value = self.check(arch).value
        free = [k for k in KEYS if len(self._choices.get(k, KEYS)) > 1]
        for _ in range(1000):
            key = free[int(rng.integers(len(free)))]
            child = self._arch(value | {key: self._draw(key, rng)})
            if child is not None and child != arch:
                return child
        raise NasforgeError(f"space '{self.name}': no move keeps {arch.key} in the space")

    def neighbors(self, arch: Arch) -> list[Arch]:
        """d +- 1, w0 +- 8, wa x 0.9 / x 1.1, wm +- 0.05 and the next g / b / se option down and up."""
        value = self.check(arch).value
        steps = {"d": [value["d"] - 1, value["d"] + 1], "w0": [value["w0"] - QUANTUM, value["w0"] + QUANTUM],
                 "wa": [round(value["wa"] * 0.9, 2), round(value["wa"] * 1.1, 2)],
                 "wm": [round(value["wm"] - 0.05, 2), round(value["wm"] + 0.05, 2)]}
        for key, options in self._choices.items():
            steps[key] = [v for v in options if v < value[key]][-1:] + [v for v in options if v > value[key]][:1]
        found, seen = [], {arch.key}
        for key, values in steps.items():
            for v in values:
                try:
                    child = self.validate(value | {key: v})
                except NasforgeError:  # off the edge of the JSON form (d = 0, wm <= 1, too many stages)
                    continue
                if child.key not in seen:
                    seen.add(child.key)
                    found.append(child)
        return found

    def encode(self, arch: Arch) -> np.ndarray:
        """d, log2 w0, log2(1 + wa), wm, log2 g, log2 b, se."""
        v = self.check(arch).value
        return np.array([v["d"], math.log2(v["w0"]), math.log2(1 + v["wa"]), v["wm"], math.log2(v["g"]),
                         math.log2(v["b"]), v["se"]], dtype=np.float32)
