"""The NAS-Bench-201 cell space (Dong & Yang, 2020, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search").

A cell is a DAG of 4 nodes; node j (1..3) sums one op on each earlier node, so there are 6 edges
(1<-0; 2<-0, 2<-1; 3<-0, 3<-1, 3<-2) and each picks one of 5 ops: 5^6 = 15,625 cells.

JSON form: the benchmark's own arch string, one `|op~source|` group per node, nodes joined by '+'::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

and the `Arch` key is that string, so keys are the `arch` column of NAS-Bench-201 tables.

`path_encode` is the path encoding of BANANAS: the input (node 0) reaches the output (node 3) along
4 routes (0-3, 0-1-3, 0-2-3, 0-1-2-3), and each route whose ops are all other than `none` sets the
feature of its op sequence. `none` zeroes whatever flows through it, so paths through it get no
features: 4 + 4^2 + 4^3 = 84 features (not 155), and every cell whose output is cut off from its
input (the all-`none` cell among them) encodes as zeros.

`build` gives the network the benchmark trained (the reference `TinyNetwork`): stem, three stages of
`cells_per_stage` cells at C, 2C, 4C channels joined by residual reduction blocks, BN-ReLU, global
average pooling, linear. With C=16, N=5, 32x32x3 inputs and 10 classes the all-nor_conv_3x3 cell
has 1,531,546 parameters, as the benchmark lists.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from functools import lru_cache, reduce
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.spaces.base import Arch, HasSupernet, PathEncodable, Scalable, check_scale, path_feature
from nasforge.spaces.choices import Choice, ChoiceSpace
from nasforge.spaces.ops import AvgPool3x3, ReLUConvBN, Zero

__all__ = ["EDGES", "NB201_OPS", "PATH_OPS", "ROUTES", "NB201Network", "NB201Space", "format_arch", "parse_arch"]

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The candidate ops, in the benchmark's order (`NAS_BENCH_201` in the reference code)."""

EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(target, source) node pairs, in the order the arch string lists them."""

NODES = 4


def _routes(source: int) -> list[tuple[int, ...]]:
    """Every route from node `source` to the output node, as indices into `EDGES`."""
    if source == NODES - 1:
        return [()]
    return [(k, *rest) for k, (target, start) in enumerate(EDGES) if start == source for rest in _routes(target)]


ROUTES: tuple[tuple[int, ...], ...] = tuple(_routes(0))
"""The input-to-output routes of the cell (edge indices), for the path encoding."""

PATH_OPS: tuple[str, ...] = tuple(op for op in NB201_OPS if op != "none")
"""The ops a path feature is made of: a path through `none` carries nothing and gets no feature."""

PATH_FEATURES = sum(len(PATH_OPS) ** length for length in range(1, NODES))  # 4 + 16 + 64 = 84

# op name -> module on `c` channels; every cell edge keeps channels and resolution (stride 1). `affine`:
# whether a convolution's BatchNorm learns a scale and shift (a search supernet may leave them out).
OP_FACTORIES: dict[str, Callable[..., nn.Module]] = {
    "none": lambda c, affine=True: Zero(c, c, 1),
    "skip_connect": lambda c, affine=True: nn.Identity(),
    "nor_conv_1x1": lambda c, affine=True: ReLUConvBN(c, c, 1, 1, 0, affine=affine),
    "nor_conv_3x3": lambda c, affine=True: ReLUConvBN(c, c, 3, 1, 1, affine=affine),
    "avg_pool_3x3": lambda c, affine=True: AvgPool3x3(c),
}


def parse_arch(text: Any) -> tuple[str, ...]:
    """The 6 edge ops of an arch string, in `EDGES` order; a malformed string raises `NasforgeError`.

    >>> parse_arch("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    ('none', 'skip_connect', 'none', 'none', 'none', 'nor_conv_1x1')
    """
    if not isinstance(text, str):
        raise NasforgeError(f"arch: expected a NAS-Bench-201 string like '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|', got {text!r}")
    return _parse_string(text)


@lru_cache(maxsize=None)  # only well-formed strings are kept: at most the 15,625 cells
def _parse_string(text: str) -> tuple[str, ...]:
    groups = text.split("+")
    if len(groups) != NODES - 1:
        raise NasforgeError(f"arch: expected {NODES - 1} node groups joined by '+', got {len(groups)} in {text!r}")
    ops = []
    for target, group in enumerate(groups, start=1):
        if len(group) < 2 or group[0] != "|" or group[-1] != "|":
            raise NasforgeError(f"arch: node {target} must be written '|op~source|...|', got {group!r}")
        edges = group[1:-1].split("|")
        if len(edges) != target:
            raise NasforgeError(f"arch: node {target} needs {target} edges (from nodes 0..{target - 1}), got {len(edges)} in {group!r}")
        for source, edge in enumerate(edges):
            op, tilde, written = edge.partition("~")
            if not tilde or written != str(source):  # the benchmark always lists sources 0, 1, .. in order
                raise NasforgeError(f"arch: edge {target}<-{source} must be written 'op~{source}', got {edge!r}")
            if op not in NB201_OPS:
                raise NasforgeError(f"arch: edge {target}<-{source} has op {op!r} (allowed: {', '.join(NB201_OPS)})")
            ops.append(op)
    return tuple(ops)


def format_arch(ops: Sequence[str]) -> str:
    """The arch string of 6 edge ops given in `EDGES` order (the inverse of `parse_arch`)."""
    groups: list[list[str]] = [[] for _ in range(NODES - 1)]
    for (target, source), op in zip(EDGES, ops, strict=True):
        groups[target - 1].append(f"{op}~{source}")
    return "+".join("|" + "|".join(group) + "|" for group in groups)


def _positive_int(name: str, value: Any) -> int:
    if type(value) is not int or value < 1:
        raise NasforgeError(f"{name}: expected a positive integer, got {value!r}")
    return value


class NB201Space(ChoiceSpace, PathEncodable, HasSupernet, Scalable):
    """NAS-Bench-201's cells in its evaluation network of `channels` (C) initial channels and
    `cells_per_stage` (N) cells per stage; the benchmark uses C=16, N=5.

    >>> space = NB201Space()
    >>> arch = space.validate("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    >>> net = space.build(arch, (3, 32, 32), 10)
    """

    name = "nb201"

    def __init__(self, *, channels: int = 16, cells_per_stage: int = 5) -> None:
        self.channels = _positive_int("channels", channels)
        self.cells_per_stage = _positive_int("cells_per_stage", cells_per_stage)
        self._choices = tuple(Choice(f"edge_{target}_{source}", NB201_OPS) for target, source in EDGES)

    @property
    def choices(self) -> tuple[Choice, ...]:
        return self._choices

    def decode(self, decisions: Sequence[int]) -> Arch:
        if len(decisions) != len(EDGES):
            raise NasforgeError(f"decisions: expected {len(EDGES)} indices, got {len(decisions)}")
        return Arch.of(self.name, format_arch([NB201_OPS[d] for d in decisions]))

    def decisions(self, arch: Arch) -> tuple[int, ...]:
        return tuple(NB201_OPS.index(op) for op in parse_arch(self.check(arch).key))

    def validate(self, value: Any) -> Arch:
        return Arch.of(self.name, format_arch(parse_arch(value)))

    def canonical_key(self, arch: Arch) -> str:
        """The function the cell computes, written out: each node is the sorted sum of its terms, where
        `none` (and any op on a node that is constantly zero) adds nothing, `skip_connect` adds the
        source's terms themselves, `avg_pool_3x3` (linear) the pool of each of them, and a convolution
        `op(source)` with the source's terms divided by their common multiplicity (BN undoes the scale).
        Cells that differ only on dead edges, where an identity or a pool sits, or such a scale, get the
        same key: they compute the same function of the same weights.

        >>> space = NB201Space()
        >>> a = space.validate("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
        >>> b = space.validate("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
        >>> space.canonical_key(a) == space.canonical_key(b), space.canonical_key(a)
        (True, 'nor_conv_3x3(nor_conv_3x3(x))+x')
        """
        return _function_of(parse_arch(self.check(arch).key))

    def path_encode(self, arch: Arch) -> np.ndarray:
        """84 features, one per op sequence (1 to 3 ops, none of them `none`) of a live input-to-output path."""
        code = np.zeros(PATH_FEATURES, dtype=np.float32)
        code[list(_path_features(parse_arch(self.check(arch).key)))] = 1.0
        return code

    def build(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> NB201Network:
        ops = parse_arch(self.check(arch).key)
        if len(input_shape) != 3 or any(type(n) is not int or n < 1 for n in input_shape):
            raise NasforgeError(f"input_shape: expected (channels, height, width) of positive integers, got {tuple(input_shape)!r}")
        _positive_int("num_classes", num_classes)
        return NB201Network(ops, input_shape[0], num_classes, channels=self.channels, cells_per_stage=self.cells_per_stage)

    def scale(self, arch: Arch, depth: float, width: float) -> tuple[dict[str, Any], Arch]:
        """The same cell in a network of round(C x `width`) channels and round(N x `depth`) cells per stage (at least 1)."""
        check_scale(depth, width)
        return {"channels": max(1, round(self.channels * width)),
                "cells_per_stage": max(1, round(self.cells_per_stage * depth))}, self.check(arch)

    def supernet(self, input_shape: tuple[int, ...], num_classes: int, *, affine: bool = True) -> nn.Module:
        """The weight-sharing supernet of this space (`nasforge.oneshot.nb201.NB201Supernet`); bad shapes are refused as by `build`."""
        from nasforge.oneshot.nb201 import NB201Supernet  # the oneshot package builds on this module

        return NB201Supernet(self, input_shape, num_classes, affine=affine)


@lru_cache(maxsize=None)  # at most one entry per cell
def _function_of(ops: tuple[str, ...]) -> str:
    """The canonical key of the cell with edge ops `ops` (see `NB201Space.canonical_key`)."""
    nodes: list[list[str]] = [["x"]]
    for target in range(1, NODES):
        terms: list[str] = []
        for (node, source), op in zip(EDGES, ops):
            if node != target or op == "none" or not nodes[source]:
                continue
            if op == "skip_connect":
                terms.extend(nodes[source])
            elif op == "avg_pool_3x3":  # linear: the pool of a sum is the sum of the pools
                terms.extend(f"{op}({term})" for term in nodes[source])
            else:  # ReLU-conv-BN: BN undoes any positive scale of its input, so conv(a+a) is conv(a)
                counts = Counter(nodes[source])
                scale = math.gcd(*counts.values())
                inner = sorted(term for term, n in counts.items() for _ in range(n // scale))
                terms.append(f"{op}({'+'.join(inner)})")
        nodes.append(sorted(terms))
    return "+".join(nodes[-1]) or "0"


@lru_cache(maxsize=None)  # at most one entry per cell
def _path_features(ops: tuple[str, ...]) -> tuple[int, ...]:
    """The path-encoding features set by the cell with edge ops `ops`."""
    return tuple(path_feature([PATH_OPS.index(ops[k]) for k in route], len(PATH_OPS))
                 for route in ROUTES if all(ops[k] != "none" for k in route))


class _Cell(nn.Module):
    """One cell (the reference `InferCell`): node j is the sum of its edges' ops on earlier nodes; the
    cell outputs node 3. `none` edges add zeros, so they are left out of the sums; a node fed by
    `none` edges only is the zero map its first edge (a `Zero`) gives."""

    def __init__(self, ops: Sequence[str], c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(OP_FACTORIES[op](c) for op in ops)
        self.incoming = [[k for k, (target, _) in enumerate(EDGES) if target == node] for node in range(1, NODES)]
        self.live = [[k for k in edges if ops[k] != "none"] for edges in self.incoming]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for edges, live in zip(self.incoming, self.live):
            if live:
                # reduce, not sum(): sum starts from 0 and would add a tensor of zeros once more per node
                nodes.append(reduce(operator.add, (self.edges[k](nodes[EDGES[k][1]]) for k in live)))
            else:
                nodes.append(self.edges[edges[0]](nodes[0]))
        return nodes[-1]


class _ResidualReduction(nn.Module):
    """The reference `ResNetBasicblock` with stride 2 between stages: two ReLU-Conv3x3-BN (the first
    strided) plus a shortcut of 2x2 average pooling and a 1x1 conv.

    The pool uses `ceil_mode` so that odd sizes shrink to ceil(n / 2) like the strided conv (the
    reference's floor mode fails on them); on even sizes, such as 32x32, both modes are identical."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """NAS-Bench-201's network (the reference `TinyNetwork`) for a cell of 6 edge ops: stem conv 3x3 +
    BN to C channels, N cells, reduction to 2C, N cells, reduction to 4C, N cells, BN-ReLU, global
    average pool, linear. `forward` returns the logits."""

    def __init__(self, ops: Sequence[str], in_channels: int, num_classes: int, *, channels: int,
                 cells_per_stage: int) -> None:
        super().__init__()
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.cells = nn.ModuleList()
        for stage in range(3):
            if stage > 0:
                self.cells.append(_ResidualReduction(c, 2 * c))
                c *= 2
            self.cells.extend(_Cell(ops, c) for _ in range(cells_per_stage))
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))
