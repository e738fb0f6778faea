"""A layer-wise MobileNet space: the chain searched by MnasNet, ProxylessNAS and Once-for-All.

The network is a MobileNetV3 skeleton (Howard et al., 2019): a stride-2 3x3 stem, one fixed
MBConv(e=1, k=3), then stages of inverted-residual blocks (the first block of a stage carries its
stride), a 1x1 conv to `final` channels, global pooling, a `head`-wide linear layer with hard-swish
and the classifier. The search picks a width multiplier for all layers, a depth per stage and, per
block, its kernel size, expansion ratio, squeeze-and-excitation and activation (Tan et al., 2019;
Cai et al., 2019 and 2020). Blocks beyond a stage's depth are inactive: they are absent from the
architecture, so `size` counts distinct networks, not decision vectors.

With `blocks=("mbconv", "ghost")` each block also picks its type: the inverted residual or GhostNet's
bottleneck (Han et al., 2020) with the same kernel, expansion (hidden width), SE and activation; its
blocks then carry a `"block"` field. The default, `blocks=("mbconv",)`, has no such field, so the
JSON form of MBConv-only archs is unchanged.

JSON form (depth of a stage = the number of its blocks)::

    {"width": 1.0,
     "stages": [[{"k": 3, "e": 4, "se": false, "act": "relu"}, {"k": 3, "e": 3, "se": false, "act": "relu"}],
                ...one list per stage...]}

Example::

    space = MobileNetSpace()
    arch = space.sample(np.random.default_rng(0))
    model = space.build(arch, (3, 224, 224), num_classes=1000)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.spaces.base import Arch, HasSupernet, Scalable, check_scale, json_object
from nasforge.spaces.blocks import ACTIVATIONS, ConvBNAct, GhostBottleneck, MBConv, make_divisible
from nasforge.spaces.choices import Choice, ChoiceSpace

BLOCK_FIELDS = ("k", "e", "se", "act")
BLOCK_TYPES = ("mbconv", "ghost")


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is an int subclass; True is no channel count


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _sequence(field: str, values: Any, ok: Callable[[Any], bool], rule: str) -> tuple[Any, ...]:
    """`values` as a non-empty tuple whose items all pass `ok`; `rule` says what is allowed."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise NasforgeError(f"{field}: expected a non-empty list ({rule}), got {values!r}")
    for value in values:
        if not ok(value):
            raise NasforgeError(f"{field}: {value!r} is not allowed ({rule})")
    return tuple(values)


def _options(field: str, values: Any, ok: Callable[[Any], bool], rule: str) -> tuple[Any, ...]:
    """Like `_sequence`, for the options of a choice: they must also be distinct."""
    options = _sequence(field, values, ok, rule)
    if len(set(options)) != len(options):
        raise NasforgeError(f"{field}: options must be distinct, got {list(options)}")
    return options


def _positive_int(field: str, value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise NasforgeError(f"{field}: expected a positive integer, got {value!r}")
    return value


class MobileNetSpace(ChoiceSpace, Scalable, HasSupernet):
    """MobileNetV3-style chain with a searchable width, per-stage depth and per-block k / e / SE / activation.

    Defaults follow Once-for-All's MobileNetV3 space: five stages of widths 24-160 after a 16-channel
    stem, depths 2-4, kernels 3/5/7, expansions 3/4/6, plus SE and activation per block and a width
    multiplier. Channel counts are `make_divisible(width * multiplier, 8)`; `head` is only widened,
    never narrowed (MobileNetV2's rule for the last layer).
    """

    name = "mobilenet"

    def __init__(
        self,
        *,
        stem: int = 16,
        widths: Sequence[int] = (24, 40, 80, 112, 160),
        strides: Sequence[int] = (2, 2, 2, 1, 2),
        depths: Sequence[int] = (2, 3, 4),
        kernels: Sequence[int] = (3, 5, 7),
        expansions: Sequence[float] = (3, 4, 6),
        se: Sequence[bool] = (False, True),
        acts: Sequence[str] = ("relu", "hswish"),
        width_mults: Sequence[float] = (0.75, 1.0, 1.25),
        final: int = 960,
        head: int = 1280,
        blocks: Sequence[str] = ("mbconv",),
    ) -> None:
        self.stem = _positive_int("stem", stem)
        self.final = _positive_int("final", final)
        self.head = _positive_int("head", head)
        self.widths = _sequence("widths", widths, lambda v: _is_int(v) and v >= 1, "positive integers")
        self.strides = _sequence("strides", strides, lambda v: _is_int(v) and v in (1, 2), "allowed: 1, 2")
        if len(self.strides) != len(self.widths):
            raise NasforgeError(f"strides: expected one per stage ({len(self.widths)}), got {len(self.strides)}")
        self.depths = _options("depths", depths, lambda v: _is_int(v) and v >= 1, "positive integers")
        self.width_mults = _options("width_mults", width_mults, lambda v: _is_number(v) and v > 0, "positive numbers")
        block_options = (
            _options("kernels", kernels, lambda v: _is_int(v) and v > 0 and v % 2 == 1, "positive odd integers"),
            _options("expansions", expansions, lambda v: _is_number(v) and v >= 1, "numbers >= 1"),
            _options("se", se, lambda v: type(v) is bool, "allowed: False, True"),
            _options("acts", acts, lambda v: v in ACTIVATIONS, f"allowed: {', '.join(ACTIVATIONS)}"),
        )
        self.blocks = _options("blocks", blocks, lambda v: v in BLOCK_TYPES, f"allowed: {', '.join(BLOCK_TYPES)}")
        typed = () if self.blocks == ("mbconv",) else (Choice("block", self.blocks),)  # no field: the original JSON form
        self._block_choices = typed + tuple(Choice(f, o) for f, o in zip(BLOCK_FIELDS, block_options))
        self._fields = tuple(c.name for c in self._block_choices)
        self.max_depth = max(self.depths)

        # Decision layout: width, then per stage its depth followed by max_depth blocks of BLOCK_FIELDS.
        choices = [Choice("width", self.width_mults)]
        self._block_of: list[tuple[int, int] | None] = [None]  # (stage, block) of each decision
        self._depth_at: list[int] = []
        for s in range(len(self.widths)):
            self._depth_at.append(len(choices))
            choices.append(Choice(f"stages[{s}].depth", self.depths))
            self._block_of.append(None)
            for b in range(self.max_depth):
                choices += [Choice(f"stages[{s}][{b}].{c.name}", c.options) for c in self._block_choices]
                self._block_of += [(s, b)] * len(self._fields)
        self._choices = tuple(choices)

    @property
    def choices(self) -> tuple[Choice, ...]:
        return self._choices

    @property
    def _per_block(self) -> int:
        return math.prod(len(c.options) for c in self._block_choices)

    @property
    def size(self) -> int:
        per_stage = sum(self._per_block**d for d in self.depths)
        return len(self.width_mults) * per_stage ** len(self.widths)

    def sample(self, rng: np.random.Generator) -> Arch:
        # Uniform over distinct networks: a stage has per_block**d variants of depth d, so deeper
        # stages are proportionally likelier (drawing every decision uniformly would favour shallow ones).
        weights = [self._per_block**d for d in self.depths]
        total = sum(weights)
        p = np.array([w / total for w in weights])
        decisions = [int(rng.integers(len(self.width_mults)))]
        for _ in self.widths:
            depth = int(rng.choice(len(self.depths), p=p))
            decisions.append(depth)
            for b in range(self.max_depth):
                active = b < self.depths[depth]
                decisions += [int(rng.integers(len(c.options))) if active else 0 for c in self._block_choices]
        return self.decode(decisions)

    def decode(self, decisions: Sequence[int]) -> Arch:
        it = iter(decisions)
        width = self.width_mults[next(it)]
        stages = []
        for _ in self.widths:
            depth = self.depths[next(it)]
            blocks = [{c.name: c.options[next(it)] for c in self._block_choices} for _ in range(self.max_depth)]
            stages.append(blocks[:depth])
        return Arch.of(self.name, {"width": width, "stages": stages})

    def decisions(self, arch: Arch) -> tuple[int, ...]:
        return self._parse(self.check(arch).value)

    def validate(self, value: Any) -> Arch:
        return self.decode(self._parse(value))

    def _parse(self, value: Any) -> tuple[int, ...]:
        """The decision indices of a JSON form; the first bad field raises, named by its path."""
        value = json_object(value, ("width", "stages"), "arch")
        found = [self._choices[0].index(value["width"], "arch.width")]
        stages = value["stages"]
        if not isinstance(stages, list) or len(stages) != len(self.widths):
            raise NasforgeError(f"arch.stages: expected a list of {len(self.widths)} stages, got {stages!r}")
        allowed = ", ".join(map(str, self.depths))
        for s, blocks in enumerate(stages):
            if not isinstance(blocks, list):
                raise NasforgeError(f"arch.stages[{s}]: expected a list of blocks, got {blocks!r}")
            if len(blocks) not in self.depths:
                raise NasforgeError(f"arch.stages[{s}]: {len(blocks)} blocks is not allowed (allowed: {allowed})")
            found.append(self.depths.index(len(blocks)))
            for b in range(self.max_depth):
                if b >= len(blocks):
                    found += [0] * len(self._fields)  # inactive block
                    continue
                field = f"arch.stages[{s}][{b}]"
                block = json_object(blocks[b], self._fields, field)
                found += [c.index(block[c.name], f"{field}.{c.name}") for c in self._block_choices]
        return tuple(found)

    def encode(self, arch: Arch) -> np.ndarray:
        """One-hot per decision; an inactive block's decisions are all zeros (as OFA's predictor encodes them)."""
        decisions = self.decisions(arch)
        depth = [self.depths[decisions[i]] for i in self._depth_at]
        parts = []
        for choice, d, slot in zip(self._choices, decisions, self._block_of):
            one_hot = np.zeros(len(choice.options), dtype=np.float32)
            if slot is None or slot[1] < depth[slot[0]]:
                one_hot[d] = 1.0
            parts.append(one_hot)
        return np.concatenate(parts)

    def scale(self, arch: Arch, depth: float, width: float) -> tuple[dict[str, Any], Arch]:
        """The width multiplier x `width` (2 decimals) and each stage's depth x `depth`, rounded up as
        EfficientNet does (added blocks repeat the stage's last block); the options are this space's
        with the scaled multiplier and depths as its only choices of them."""
        check_scale(depth, width)
        value = self.check(arch).value
        stages = [blocks[: math.ceil(len(blocks) * depth)] + blocks[-1:] * (math.ceil(len(blocks) * depth) - len(blocks))
                  for blocks in value["stages"]]
        scaled = {"width": round(value["width"] * width, 2), "stages": stages}
        options = {"stem": self.stem, "widths": list(self.widths), "strides": list(self.strides),
                   "depths": sorted({len(b) for b in stages}), "width_mults": [scaled["width"]],
                   "final": self.final, "head": self.head, "blocks": list(self.blocks)}
        options.update({name: list(c.options) for name, c in zip(("kernels", "expansions", "se", "acts"), self._block_choices[-4:])})
        return options, MobileNetSpace(**options).validate(scaled)

    def build(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        value = self.check(arch).value
        if len(input_shape) != 3 or not all(_is_int(n) and n >= 1 for n in input_shape):
            raise NasforgeError(f"input_shape: expected (C, H, W) of positive integers, got {tuple(input_shape)!r}")
        _positive_int("num_classes", num_classes)
        w = value["width"]
        c = make_divisible(self.stem * w)
        layers: list[nn.Module] = [ConvBNAct(input_shape[0], c, 3, 2, act="hswish"), MBConv(c, c, 3, 1, expansion=1)]
        for width, stride, blocks in zip(self.widths, self.strides, value["stages"]):
            c_out = make_divisible(width * w)
            for i, block in enumerate(blocks):
                s = stride if i == 0 else 1
                if block.get("block") == "ghost":  # hidden width as MBConv's expansion gives it
                    hidden = make_divisible(c * block["e"])
                    layers.append(GhostBottleneck(c, hidden, c_out, block["k"], s, block["se"], block["act"]))
                else:
                    layers.append(MBConv(c, c_out, block["k"], s, block["e"], block["se"], block["act"]))
                c = c_out
        final, head = make_divisible(self.final * w), make_divisible(self.head * max(1.0, w))
        layers += [
            ConvBNAct(c, final, 1, act="hswish"),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(final, head),
            nn.Hardswish(),
            nn.Linear(head, num_classes),
        ]
        return nn.Sequential(*layers)

    def supernet(self, input_shape: tuple[int, ...], num_classes: int, *, affine: bool = True) -> nn.Module:
        """The weight-sharing supernet of this space (`nasforge.oneshot.mobilenet.MobileNetSupernet`); its
        blocks keep their BatchNorms' scale and shift (`affine` True only)."""
        from nasforge.oneshot.mobilenet import MobileNetSupernet  # the oneshot package builds on this module

        if not affine:
            raise NasforgeError("bn_affine: false is for the cell spaces' supernets (nb201, darts); "
                                "mobilenet's supernet keeps its BatchNorms affine (allowed: true)")
        return MobileNetSupernet(self, input_shape, num_classes)
