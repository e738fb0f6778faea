"""The DARTS / NASNet cell space (Liu, Simonyan & Yang, 2019, "DARTS: Differentiable Architecture Search").

An architecture is a normal and a reduction cell. Each cell has two inputs (the outputs of the two
previous cells) and 4 intermediate nodes; node i (0..3) sums two edges, each an op applied to one of
the i + 2 earlier states; the cell outputs the concatenation of the 4 nodes (states 2..5).

JSON form: DARTS' `Genotype` fields, pairs as `[op, input]`, kept in the order given::

    {"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ...8 pairs], "normal_concat": [2, 3, 4, 5],
     "reduce": [...8 pairs], "reduce_concat": [2, 3, 4, 5]}

so published genotypes (`GENOTYPES`: DARTS_V1/V2, P-DARTS, PC-DARTS) load as they are.

Decisions: for each cell type and each of its 8 pairs, the op and the input, independently. Every
decision vector is a valid architecture: `validate` accepts what published genotypes contain, a
node reading the same input twice and pairs in any order, so `decode`, `mutate` and `neighbors`
never leave the space. `sample` draws the DARTS space proper: two distinct inputs per node, listed
in ascending order so that each sampled network has exactly one key. `size` counts those:
(C(2,2) C(3,2) C(4,2) C(5,2) * 8^8)^2 = (180 * 8^8)^2 = 9,119,789,245,425,254,400 (~9.1e18) with
DARTS' 8 ops; the ~1e18 usually quoted is the same count over the 7 ops other than `none`
((180 * 7^8)^2 ~ 1.08e18).

`path_encode` is the truncated path encoding of BANANAS (White et al., 2021, section 4): every
intermediate node is part of the output, so each path from a cell input to a node is an
input-to-output path; each sets the feature of its op sequence, in one block per cell type and cell
input (normal/input 0, normal/input 1, reduce/input 0, reduce/input 1). Paths through `none` carry
nothing and get no feature. The full encoding (paths of up to 4 ops) has 4 * (7 + ... + 7^4) = 11,200
features, almost all of them for rare long paths; as in the paper it is truncated, here to paths of
up to `PATH_MAX_OPS` = 3 ops: 4 * (7 + 49 + 343) = 1,596 features.

`build` gives the DARTS evaluation network (`NetworkCIFAR` of the reference code) for any input shape.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.spaces.base import Arch, HasSupernet, PathEncodable, Scalable, canonical_json, check_scale, json_object, path_feature
from nasforge.spaces.choices import Choice, ChoiceSpace
from nasforge.spaces.ops import AvgPool3x3, DilConv, FactorizedReduce, ReLUConvBN, SepConv, Zero

__all__ = ["DARTS_OPS", "GENOTYPES", "DartsNetwork", "DartsSpace"]

DARTS_OPS: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)  # DARTS' PRIMITIVES, in its order (the order of its architecture weights)

NODES = 4
CONCAT = [2, 3, 4, 5]
CELL_TYPES = ("normal", "reduce")
FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")

PATH_OPS: tuple[str, ...] = tuple(op for op in DARTS_OPS if op != "none")
"""The ops a path feature is made of: a path through `none` carries nothing and gets no feature."""
PATH_MAX_OPS = 3  # the truncation: longer paths (at most 4 ops) get no feature
PATH_BLOCK = sum(len(PATH_OPS) ** length for length in range(1, PATH_MAX_OPS + 1))  # 7 + 49 + 343 = 399

# op name -> module(channels, stride, affine): DARTS' OPS dict (operations.py); the evaluation network's
# have affine BN (`affine`: BatchNorms learn a scale and shift; a search supernet may leave them out),
# pools have no BN.
OP_FACTORIES: dict[str, Callable[..., nn.Module]] = {
    "none": lambda c, stride, affine=True: Zero(c, c, stride),
    "max_pool_3x3": lambda c, stride, affine=True: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda c, stride, affine=True: AvgPool3x3(c, stride),
    "skip_connect": lambda c, stride, affine=True: nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, stride, affine=True: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine=True: SepConv(c, c, 5, stride, 2, affine),
    "dil_conv_3x3": lambda c, stride, affine=True: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine=True: DilConv(c, c, 5, stride, 4, 2, affine),
}


def _genotype(normal: str, reduce: str) -> dict[str, Any]:
    """A genotype from compact text: 'op input, op input, ...' per cell (8 pairs each)."""
    def pairs(text: str) -> list[list[Any]]:
        return [[op, int(index)] for op, index in (pair.split() for pair in text.split(","))]
    return {"normal": pairs(normal), "normal_concat": CONCAT, "reduce": pairs(reduce), "reduce_concat": CONCAT}


# Published cells, as in the authors' genotypes.py (quark0/darts, chenxin061/pdarts, yuhuixu1993/PC-DARTS).
GENOTYPES: dict[str, dict[str, Any]] = {
    "DARTS_V1": _genotype(
        "sep_conv_3x3 1, sep_conv_3x3 0, skip_connect 0, sep_conv_3x3 1, skip_connect 0, sep_conv_3x3 1, sep_conv_3x3 0, skip_connect 2",
        "max_pool_3x3 0, max_pool_3x3 1, skip_connect 2, max_pool_3x3 0, max_pool_3x3 0, skip_connect 2, skip_connect 2, avg_pool_3x3 0"),
    "DARTS_V2": _genotype(
        "sep_conv_3x3 0, sep_conv_3x3 1, sep_conv_3x3 0, sep_conv_3x3 1, sep_conv_3x3 1, skip_connect 0, skip_connect 0, dil_conv_3x3 2",
        "max_pool_3x3 0, max_pool_3x3 1, skip_connect 2, max_pool_3x3 1, max_pool_3x3 0, skip_connect 2, skip_connect 2, max_pool_3x3 1"),
    "PDARTS": _genotype(
        "skip_connect 0, dil_conv_3x3 1, skip_connect 0, sep_conv_3x3 1, sep_conv_3x3 1, sep_conv_3x3 3, sep_conv_3x3 0, dil_conv_5x5 4",
        "avg_pool_3x3 0, sep_conv_5x5 1, sep_conv_3x3 0, dil_conv_5x5 2, max_pool_3x3 0, dil_conv_3x3 1, dil_conv_3x3 1, dil_conv_5x5 3"),
    "PC_DARTS": _genotype(
        "sep_conv_3x3 1, skip_connect 0, sep_conv_3x3 0, dil_conv_3x3 1, sep_conv_5x5 0, sep_conv_3x3 1, avg_pool_3x3 0, dil_conv_3x3 1",
        "sep_conv_5x5 1, max_pool_3x3 0, sep_conv_5x5 1, sep_conv_5x5 2, sep_conv_3x3 0, sep_conv_3x3 3, sep_conv_3x3 1, sep_conv_3x3 2"),
}


def _positive_int(name: str, value: Any) -> int:
    if type(value) is not int or value < 1:
        raise NasforgeError(f"{name}: expected a positive integer, got {value!r}")
    return value


class DartsSpace(ChoiceSpace, PathEncodable, HasSupernet, Scalable):
    """DARTS' cell space and its evaluation network: `channels` initial channels (C), `cells` cells
    (layers), a stem of `stem_multiplier` * C channels, and optionally the auxiliary tower.

    DARTS evaluates CIFAR-10 with channels=36, cells=20 (3.3M parameters); it searches with 16 and 8.

    >>> space = DartsSpace(channels=16, cells=8)
    >>> arch = space.validate(GENOTYPES["DARTS_V2"])
    >>> net = space.build(arch, (3, 32, 32), 10)
    """

    name = "darts"

    def __init__(self, *, channels: int = 16, cells: int = 8, stem_multiplier: int = 3, auxiliary: bool = False) -> None:
        self.channels = _positive_int("channels", channels)
        self.cells = _positive_int("cells", cells)
        self.stem_multiplier = _positive_int("stem_multiplier", stem_multiplier)
        if type(auxiliary) is not bool:
            raise NasforgeError(f"auxiliary: expected true or false, got {auxiliary!r}")
        self.auxiliary = auxiliary
        # pair k (0..7) feeds node k // 2, which reads one of states 0 .. k // 2 + 1
        self._choices = tuple(
            choice
            for cell in CELL_TYPES
            for k in range(2 * NODES)
            for choice in (Choice(f"{cell}[{k}].op", DARTS_OPS), Choice(f"{cell}[{k}].input", tuple(range(k // 2 + 2))))
        )

    @property
    def choices(self) -> tuple[Choice, ...]:
        return self._choices

    @property
    def size(self) -> int:
        """Sampled architectures: per node an unordered pair of distinct inputs and an op for each."""
        per_cell = math.prod(math.comb(node + 2, 2) * len(DARTS_OPS) ** 2 for node in range(NODES))
        return per_cell ** len(CELL_TYPES)

    def sample(self, rng: np.random.Generator) -> Arch:
        """Two distinct inputs per node, in ascending order, and a uniform op on each edge."""
        decisions = []
        for _ in CELL_TYPES:
            for node in range(NODES):
                inputs = np.sort(rng.choice(node + 2, size=2, replace=False))
                ops = rng.integers(len(DARTS_OPS), size=2)
                decisions += [int(ops[0]), int(inputs[0]), int(ops[1]), int(inputs[1])]
        return self.decode(decisions)

    def decode(self, decisions: Sequence[int]) -> Arch:
        if len(decisions) != len(self._choices):
            raise NasforgeError(f"decisions: expected {len(self._choices)} indices, got {len(decisions)}")
        options = [c.options[d] for c, d in zip(self._choices, decisions)]
        value: dict[str, Any] = {}
        for t, cell in enumerate(CELL_TYPES):
            flat = options[t * 4 * NODES : (t + 1) * 4 * NODES]
            value[cell] = [[flat[2 * k], flat[2 * k + 1]] for k in range(2 * NODES)]
            value[f"{cell}_concat"] = CONCAT
        return Arch.of(self.name, value)

    def decisions(self, arch: Arch) -> tuple[int, ...]:
        value = self.check(arch).value
        return tuple(
            index
            for cell in CELL_TYPES
            for op, node_input in value[cell]
            for index in (DARTS_OPS.index(op), node_input)  # an input's option index is the input itself
        )

    def validate(self, value: Any) -> Arch:
        json_object(value, FIELDS, "arch")
        for cell in CELL_TYPES:
            concat = value[f"{cell}_concat"]
            if not isinstance(concat, (list, tuple, range)) or list(concat) != CONCAT:
                raise NasforgeError(f"arch.{cell}_concat: must be {CONCAT} (the 4 nodes), got {concat!r}")
        return self.decode([d for cell in CELL_TYPES for d in _pair_decisions(cell, value[cell])])

    def canonical_key(self, arch: Arch) -> str:
        """The key with each node's two pairs in sorted order (a node sums them) and `none` pairs
        reading input 0 (they add nothing, whatever they read).

        >>> space = DartsSpace()
        >>> pairs = [["sep_conv_3x3", 0], ["skip_connect", 1]] + [["none", 2], ["max_pool_3x3", 0]] * 3
        >>> a = space.validate({"normal": pairs, "normal_concat": CONCAT, "reduce": pairs, "reduce_concat": CONCAT})
        >>> pairs = [["skip_connect", 1], ["sep_conv_3x3", 0]] + [["none", 1], ["max_pool_3x3", 0]] * 3
        >>> b = space.validate({"normal": pairs, "normal_concat": CONCAT, "reduce": pairs, "reduce_concat": CONCAT})
        >>> a.key == b.key, space.canonical_key(a) == space.canonical_key(b)
        (False, True)
        """
        value = self.check(arch).value
        for cell in CELL_TYPES:
            pairs = [["none", 0] if op == "none" else [op, node_input] for op, node_input in value[cell]]
            value[cell] = [pair for node in range(NODES) for pair in sorted(pairs[2 * node : 2 * node + 2])]
        return canonical_json(value)

    def path_encode(self, arch: Arch) -> np.ndarray:
        """1,596 features: per cell type and cell input, the op sequences (1 to 3 ops, none `none`) of its live paths."""
        value = self.check(arch).value
        code = np.zeros(len(CELL_TYPES) * 2 * PATH_BLOCK, dtype=np.float32)
        for t, cell in enumerate(CELL_TYPES):
            # state -> the (cell input, op indices) of the paths reaching it; states 0, 1 are the inputs
            paths: list[list[tuple[int, tuple[int, ...]]]] = [[(0, ())], [(1, ())]]
            for node in range(NODES):
                reaching = []
                for op, node_input in value[cell][2 * node : 2 * node + 2]:
                    if op != "none":
                        reaching += [(start, (*ops, PATH_OPS.index(op))) for start, ops in paths[node_input]
                                     if len(ops) < PATH_MAX_OPS]
                paths.append(reaching)
            for start, ops in (path for state in paths[2:] for path in state):
                code[(2 * t + start) * PATH_BLOCK + path_feature(ops, len(PATH_OPS))] = 1.0
        return code

    def scale(self, arch: Arch, depth: float, width: float) -> tuple[dict[str, Any], Arch]:
        """The same genotype in a network of round(C x `width`) channels and round(cells x `depth`) cells (at least 1)."""
        check_scale(depth, width)
        return {"channels": max(1, round(self.channels * width)), "cells": max(1, round(self.cells * depth)),
                "stem_multiplier": self.stem_multiplier, "auxiliary": self.auxiliary}, self.check(arch)

    def build(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> DartsNetwork:
        value = self.check(arch).value
        if len(input_shape) != 3 or any(type(n) is not int or n < 1 for n in input_shape):
            raise NasforgeError(f"input_shape: expected (channels, height, width) of positive integers, got {tuple(input_shape)!r}")
        _positive_int("num_classes", num_classes)
        return DartsNetwork(value["normal"], value["reduce"], tuple(input_shape), num_classes, channels=self.channels,
                            cells=self.cells, stem_multiplier=self.stem_multiplier, auxiliary=self.auxiliary)

    def supernet(self, input_shape: tuple[int, ...], num_classes: int, *, affine: bool = True) -> nn.Module:
        """DARTS' weight-sharing supernet of this space (`nasforge.oneshot.darts_supernet.DartsSupernet`);
        bad shapes are refused as by `build`."""
        from nasforge.oneshot.darts_supernet import DartsSupernet  # the oneshot package builds on this module

        return DartsSupernet(self, input_shape, num_classes, affine=affine)


def _pair_decisions(cell: str, pairs: Any) -> list[int]:
    """The (op, input) decision indices of one cell's 8 pairs; a bad pair raises naming its position."""
    if not isinstance(pairs, (list, tuple)) or len(pairs) != 2 * NODES:
        got = f"{len(pairs)} items" if isinstance(pairs, (list, tuple)) else repr(pairs)
        raise NasforgeError(f"arch.{cell}: expected {2 * NODES} [op, input] pairs (2 per node), got {got}")
    decisions = []
    for k, pair in enumerate(pairs):
        field = f"arch.{cell}[{k}]"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise NasforgeError(f"{field}: expected an [op, input] pair, got {pair!r}")
        op, node_input = pair
        if op not in DARTS_OPS:
            raise NasforgeError(f"{field}: op {op!r} is not allowed (allowed: {', '.join(DARTS_OPS)})")
        allowed = range(k // 2 + 2)
        if type(node_input) is not int or node_input not in allowed:
            raise NasforgeError(f"{field}: input {node_input!r} is not allowed for node {k // 2} "
                                f"(allowed: {', '.join(map(str, allowed))}; 0, 1 are the cell inputs, 2.. earlier nodes)")
        decisions += [DARTS_OPS.index(op), node_input]
    return decisions


def edge_op(op: str, c: int, reduction: bool, node_input: int, affine: bool = True) -> nn.Module:
    """The module of `op` on an edge from state `node_input` of a cell of `c` channels: stride 2 on the
    edges from a reduction cell's inputs (states 0 and 1)."""
    return OP_FACTORIES[op](c, 2 if reduction and node_input < 2 else 1, affine)


class _Cell(nn.Module):
    """One cell of the evaluation network (DARTS' model.Cell): preprocess both inputs to `c` channels,
    compute 4 nodes, concatenate them (4 * c channels). Edges from the cell inputs of a reduction
    cell have stride 2."""

    def __init__(self, pairs: list[list[Any]], c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        # the previous cell halved the resolution: bring the older input down to match
        self.preprocess0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.c, self.reduction = c, reduction
        self.inputs = [node_input for _, node_input in pairs]
        self.ops = nn.ModuleList(edge_op(op, c, reduction, node_input) for op, node_input in pairs)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(0, len(self.ops), 2):
            states.append(self.ops[k](states[self.inputs[k]]) + self.ops[k + 1](states[self.inputs[k + 1]]))
        return torch.cat(states[2:], dim=1)


class _AuxiliaryHead(nn.Sequential):
    """DARTS' AuxiliaryHeadCIFAR (from NASNet, Zoph et al., 2018), meant for an 8x8 map; the final
    parameter-free global pool lets larger maps through (on 8x8 it is the identity)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(768, num_classes),
        )


class DartsNetwork(nn.Module):
    """DARTS' evaluation network (NetworkCIFAR): stem conv 3x3 + BN, `cells` cells with reduction
    cells at cells // 3 and 2 * cells // 3 (each doubling the channels), global average pool, linear.

    `forward` returns the logits. With `auxiliary`, `forward_with_aux` also returns, in training
    mode, the auxiliary tower's logits on the output of the second reduction cell (DARTS weighs
    their loss by 0.4); they are None in eval mode or without the tower.
    """

    def __init__(self, normal: list[list[Any]], reduce: list[list[Any]], input_shape: tuple[int, int, int],
                 num_classes: int, *, channels: int, cells: int, stem_multiplier: int, auxiliary: bool) -> None:
        super().__init__()
        in_channels, height, width = input_shape
        c = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        c_prev_prev, c_prev, c = c, c, channels
        self.cells = nn.ModuleList()
        self.aux_at = 2 * cells // 3
        self.auxiliary_head: nn.Module | None = None
        reduction_prev = False
        for i in range(cells):
            reduction = i in (cells // 3, 2 * cells // 3)
            if reduction:
                c *= 2
                height, width = -(-height // 2), -(-width // 2)  # every stride-2 op gives ceil(size / 2)
            self.cells.append(_Cell(reduce if reduction else normal, c_prev_prev, c_prev, c, reduction, reduction_prev))
            c_prev_prev, c_prev, reduction_prev = c_prev, len(CONCAT) * c, reduction
            if i == self.aux_at and auxiliary:
                if min(height, width) < 8:  # the head's 5x5/3 pool and 2x2 conv need at least 8x8
                    raise NasforgeError(f"auxiliary: the tower needs an 8x8 map or larger after cell {i}; input "
                                        f"{input_shape} gives {height}x{width} (use auxiliary=False)")
                self.auxiliary_head = _AuxiliaryHead(c_prev, num_classes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, with_aux=False)[0]

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._run(x, with_aux=self.training and self.auxiliary_head is not None)

    def _run(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits_aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if with_aux and i == self.aux_at:
                logits_aux = self.auxiliary_head(s1)
        return self.classifier(self.global_pooling(s1).flatten(1)), logits_aux
