"""The NAS-Bench-201 supernet: `NB201Network`'s skeleton with every op of `NB201_OPS` on each cell edge.

Module names mirror `NB201Network` with one more level per edge (`cells.i.edges.e.<op index>.*`), so a
subnet's weights are the supernet's with that level dropped. The five architecture decisions (the six
edges) are shared by every cell, as in the benchmark, so `weights` and `path` are given once per network.
`affine=False` leaves the scale and shift out of the cell convolutions' BatchNorms, as NAS-Bench-201's own
search cells do (Dong & Yang, 2020); an extracted subnet gets them as 1 and 0, computing the same.
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
from nasforge.spaces.nb201 import EDGES, NB201_OPS, NODES, OP_FACTORIES, NB201Network, NB201Space, _ResidualReduction

__all__ = ["NB201Supernet"]

NONE = NB201_OPS.index("none")


class _SuperCell(nn.Module):
    """A cell with all five ops on each of its six edges; `forward` follows `nasforge.oneshot.supernet`."""

    def __init__(self, c: int, affine: bool) -> None:
        super().__init__()
        self.edges = nn.ModuleList(nn.ModuleList(OP_FACTORIES[op](c, affine) for op in NB201_OPS) for _ in EDGES)
        self.incoming = [[k for k, (target, _) in enumerate(EDGES) if target == node] for node in range(1, NODES)]

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None, path: Sequence[int] | None,
                aux_skip: float = 0.0) -> torch.Tensor:
        nodes = [x]
        for edges in self.incoming:
            if path is not None and weights is None:
                # exactly `_Cell.forward` of the path's network: `none` edges left out of the sums
                live = [k for k in edges if path[k] != NONE]
                if live:
                    nodes.append(reduce(operator.add, (self.edges[k][path[k]](nodes[EDGES[k][1]]) for k in live)))
                else:
                    nodes.append(self.edges[edges[0]][NONE](nodes[0]))
                continue
            nodes.append(reduce(operator.add, (self._edge(k, nodes[EDGES[k][1]], weights, path, aux_skip) for k in edges)))
        return nodes[-1]

    def _edge(self, k: int, x: torch.Tensor, weights: torch.Tensor, path: Sequence[int] | None,
              aux_skip: float) -> torch.Tensor:
        """Edge `k` mixed (`path` None) or straight-through, as `mixed_edge` defines them."""
        return mixed_edge(self.edges[k], x, weights[k], None if path is None else path[k], NONE, aux_skip)


class NB201Supernet(Supernet):
    """The weight-sharing supernet of an `NB201Space` (its C and N) for `input_shape` and `num_classes`.

    >>> space = NB201Space(channels=8, cells_per_stage=1)
    >>> net = NB201Supernet(space, (3, 32, 32), 10)
    >>> logits = net(torch.zeros(2, 3, 32, 32), weights=torch.full((6, 5), 0.2))
    """

    def __init__(self, space: NB201Space, input_shape: tuple[int, ...], num_classes: int, *, affine: bool = True) -> None:
        super().__init__()
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), num_classes
        # built from the standalone network so that stem, reductions and head are the same modules
        skeleton = space.build(space.decode([0] * len(EDGES)), self.input_shape, num_classes)
        self.stem, self.lastact, self.global_pooling, self.classifier = (
            skeleton.stem, skeleton.lastact, skeleton.global_pooling, skeleton.classifier)
        self.cells = nn.ModuleList(
            cell if isinstance(cell, _ResidualReduction) else _SuperCell(cell.edges[0].c_out, affine)
            for cell in skeleton.cells)
        self.aux_skip = 0.0  # DARTS-'s auxiliary skip weight in mixed mode, set by the trainer each epoch

    @property
    def derivable(self) -> torch.Tensor:
        mask = torch.ones(len(EDGES), len(NB201_OPS), dtype=torch.bool)
        mask[:, NONE] = False
        return mask

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None,
                path: Sequence[int] | None = None) -> torch.Tensor:
        if weights is None and path is None:
            raise ValueError("NB201Supernet.forward: give weights, path or both")
        x = self.stem(x)
        aux = self.aux_skip if path is None else 0.0
        for cell in self.cells:
            x = cell(x) if isinstance(cell, _ResidualReduction) else cell(x, weights, path, aux)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))

    def extract(self, arch: Arch) -> NB201Network:
        path = self.path(arch)
        return self.inherit(self.space.build(arch, self.input_shape, self.num_classes),
                            lambda key: _edge_key.sub(lambda m: f"{m[1]}{m[2]}.{path[int(m[2])]}.", key))


# `cells.3.edges.4.` in a subnet is `cells.3.edges.4.<op index>.` in the supernet
_edge_key = re.compile(r"^(cells\.\d+\.edges\.)(\d+)\.")
