"""DARTS' own supernet (Liu, Simonyan & Yang, 2019) for the darts space: `DartsNetwork`'s skeleton with,
in every cell, each intermediate node i (0..3) fed by a mixed op from each of its i + 2 earlier states —
14 edges per cell, each holding all 8 `DARTS_OPS` (`none` included) with shared weights.

Architecture weights: one row per edge and cell type, the 14 rows of the normal cells, then the 14 of
the reduction cells (DARTS' alpha_normal and alpha_reduce stacked; edge order: node 0's inputs 0, 1,
node 1's inputs 0..2, ...), every normal cell sharing the first and every reduction cell the second.
They are not the space's decisions, one op and one input per node input, so this supernet says its
own `weight_sizes` (28 rows of 8) and derivation: DARTS' `genotype()`, per node the 2 incoming edges
whose strongest non-`none` op is strongest, each with that op, strongest edge first.

`forward` modes (see `nasforge.oneshot.supernet`): `weights` only, every op of every edge mixed; `path`
only, the space's decisions, exactly `_Cell.forward` of that architecture's network (two pairs reading
the same input with the same op share one module, as they share one row of weights); both, GDAS'
straight-through sample of one op per edge (`path` one index per row). Ops, BatchNorm and preprocessing
are the evaluation network's (affine BN, no BN after pools; DARTS' search network differs there), so a
subnet inherits them as they are; `affine=False` leaves the edge ops' BatchNorms without scale and shift,
as DARTS' search network has them (a subnet gets 1 and 0, computing the same). DARTS-'s auxiliary skip
(`aux_skip`, mixed mode) goes on every edge that keeps the resolution, not on a reduction cell's edges
from its inputs (their skip_connect is a FactorizedReduce with weights). Module names mirror `DartsNetwork` with `ops.<pair>` replaced by
`edges.<edge>.<op index>`.
"""

from __future__ import annotations

import operator
import re
from functools import reduce
from typing import Sequence

import torch
import torch.nn as nn

from nasforge.oneshot.supernet import Supernet, mixed_edge
from nasforge.spaces.base import Arch
from nasforge.spaces.darts import CELL_TYPES, DARTS_OPS, NODES, DartsNetwork, DartsSpace, edge_op

__all__ = ["DartsSupernet"]

NONE = DARTS_OPS.index("none")
OFFSETS = [sum(range(2, node + 2)) for node in range(NODES)]  # node i's first edge: 0, 2, 5, 9
EDGES = sum(node + 2 for node in range(NODES))  # 14 per cell
DECISIONS = 4 * NODES  # the space's decisions per cell type: an op and an input for each of 2 pairs per node


class _SuperCell(nn.Module):
    """A standalone cell's preprocessing with every op on each of its 14 edges."""

    def __init__(self, cell: nn.Module, affine: bool) -> None:
        super().__init__()
        self.preprocess0, self.preprocess1, self.reduction = cell.preprocess0, cell.preprocess1, cell.reduction
        self.edges = nn.ModuleList(nn.ModuleList(edge_op(op, cell.c, cell.reduction, j, affine) for op in DARTS_OPS)
                                   for node in range(NODES) for j in range(node + 2))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor | None,
                path: Sequence[int] | None, aux_skip: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(NODES):
            if weights is None:  # `path` is the cell's 8 (op, input) pairs: `_Cell.forward` of its network
                (op_a, in_a), (op_b, in_b) = path[4 * node:4 * node + 2], path[4 * node + 2:4 * node + 4]
                states.append(self.edges[OFFSETS[node] + in_a][op_a](states[in_a])
                              + self.edges[OFFSETS[node] + in_b][op_b](states[in_b]))
                continue
            states.append(reduce(operator.add, (
                mixed_edge(self.edges[OFFSETS[node] + j], states[j], weights[OFFSETS[node] + j],
                           None if path is None else path[OFFSETS[node] + j], NONE,
                           0.0 if self.reduction and j < 2 else aux_skip)  # a reducing edge has no plain skip
                for j in range(node + 2))))
        return torch.cat(states[2:], dim=1)


class DartsSupernet(Supernet):
    """The weight-sharing supernet of a `DartsSpace` (its C, cells and stem) for `input_shape` and `num_classes`.

    >>> space = DartsSpace(channels=4, cells=3)
    >>> net = DartsSupernet(space, (3, 16, 16), 10)
    >>> net(torch.zeros(2, 3, 16, 16), weights=torch.full((28, 8), 1 / 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, space: DartsSpace, input_shape: tuple[int, ...], num_classes: int, *, affine: bool = True) -> None:
        super().__init__()
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), num_classes
        # built from the standalone network so that stem, preprocessing, head (and tower) are the same modules
        skeleton: DartsNetwork = space.build(space.decode([0] * len(space.choices)), self.input_shape, num_classes)
        self.stem, self.global_pooling, self.classifier = skeleton.stem, skeleton.global_pooling, skeleton.classifier
        self.auxiliary_head = skeleton.auxiliary_head  # not trained here; kept so that `extract` fills every weight
        self.cells = nn.ModuleList(_SuperCell(cell, affine) for cell in skeleton.cells)
        self.aux_skip = 0.0  # DARTS-'s auxiliary skip weight in mixed mode, set by the trainer each epoch

    @property
    def weight_sizes(self) -> tuple[int, ...]:
        return (len(DARTS_OPS),) * (len(CELL_TYPES) * EDGES)

    @property
    def derivable(self) -> torch.Tensor:
        mask = torch.ones(len(CELL_TYPES) * EDGES, len(DARTS_OPS), dtype=torch.bool)
        mask[:, NONE] = False
        return mask

    def derive(self, weights: torch.Tensor) -> Arch:
        """DARTS' genotype: per node, the 2 edges with the strongest non-`none` op, each with that op."""
        masked = weights.detach().cpu().masked_fill(~self.derivable, -torch.inf)
        strength, best = masked.max(1).values, masked.argmax(1)
        decisions = []
        for t in range(len(CELL_TYPES)):
            for node in range(NODES):
                edges = range(t * EDGES + OFFSETS[node], t * EDGES + OFFSETS[node] + node + 2)
                for e in sorted(edges, key=lambda e: -strength[e])[:2]:  # stable: ties keep the earlier input
                    decisions += [int(best[e]), e - edges[0]]
        return self.space.decode(decisions)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None,
                path: Sequence[int] | None = None) -> torch.Tensor:
        if weights is None and path is None:
            raise ValueError("DartsSupernet.forward: give weights, path or both")
        aux = self.aux_skip if path is None else 0.0
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            t = int(cell.reduction)
            if weights is None:
                rows, choices = None, path[t * DECISIONS:(t + 1) * DECISIONS]
            else:
                rows = weights[t * EDGES:(t + 1) * EDGES]
                choices = None if path is None else path[t * EDGES:(t + 1) * EDGES]
            s0, s1 = s1, cell(s0, s1, rows, choices, aux)
        return self.classifier(self.global_pooling(s1).flatten(1))

    def extract(self, arch: Arch) -> DartsNetwork:
        path = self.path(arch)

        def key(subnet_key: str) -> str:
            match = _pair_key.match(subnet_key)
            if match is None:
                return subnet_key
            cell, pair = int(match[2]), int(match[3])
            t = int(self.cells[cell].reduction)
            op, node_input = path[t * DECISIONS + 2 * pair], path[t * DECISIONS + 2 * pair + 1]
            return f"{match[1]}edges.{OFFSETS[pair // 2] + node_input}.{op}.{subnet_key[match.end():]}"

        return self.inherit(self.space.build(arch, self.input_shape, self.num_classes), key)


# `cells.3.ops.5.` in a subnet is `cells.3.edges.<edge of pair 5>.<its op index>.` in the supernet
_pair_key = re.compile(r"^(cells\.(\d+)\.)ops\.(\d+)\.")
