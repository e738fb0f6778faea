"""The MobileNet supernet: for each width multiplier, the space's chain with every candidate block at
every block position, as ProxylessNAS (Cai et al., 2019) builds it.

A candidate is one combination of the block decisions (kernel, expansion, SE, activation and, where the
space has it, the block type): its own block, built by the space itself — the supernet is assembled
from `space.build` of one max-depth network per width and combination, whose stem, head and blocks it
keeps — so a subnet is the supernet's modules on its path and `extract` copies them exactly. Blocks
beyond a stage's chosen depth are skipped (identity). Width multipliers share nothing: each has its own
chain, since every channel count changes with it.

`forward` runs path mode (the standalone network's arithmetic) and the straight-through mode of
`nasforge.oneshot.supernet` (both `weights` and `path`): a block's residual branch (its output minus
its input where the shape is kept, the output otherwise) is scaled by the product of its decisions'
chosen weights, the branches of the blocks a deeper-than-minimal stage adds also by the depth's, the
logits by the width's, and the other weights are added as zeros. Mixed mode (every candidate summed)
is not offered: it would run ~the number of candidates times the network.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, Sequence

import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.oneshot.supernet import Supernet
from nasforge.spaces.base import Arch
from nasforge.spaces.mobilenet import MobileNetSpace

__all__ = ["MobileNetSupernet"]

STEM = 2  # the stem conv and the fixed MBConv(e=1) before the stages


class _Chain(nn.Module):
    """One width's stem, candidate blocks (`blocks[stage][position][candidate]`) and head."""

    def __init__(self, stem: nn.Sequential, blocks: nn.ModuleList, head: nn.Sequential) -> None:
        super().__init__()
        self.stem, self.blocks, self.head = stem, blocks, head


class MobileNetSupernet(Supernet):
    """The weight-sharing supernet of a `MobileNetSpace` for `input_shape` and `num_classes`.

    >>> space = MobileNetSpace(widths=(8, 16), strides=(2, 2), depths=(1, 2), kernels=(3, 5), expansions=(2,),
    ...                        se=(False,), acts=("relu",), width_mults=(1.0,), final=32, head=32)
    >>> net = MobileNetSupernet(space, (1, 8, 8), 10)
    >>> net(torch.zeros(2, 1, 8, 8), path=net.path(space.decode([0] * len(space.choices)))).shape
    torch.Size([2, 10])
    """

    def __init__(self, space: MobileNetSpace, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), num_classes
        stages, depth = len(space.widths), space.max_depth
        self.fields = ((len(space.choices) - 1) // stages - 1) // depth  # 1 + stages * (1 + depth * fields) choices
        self.field_sizes = tuple(len(c.options) for c in space.choices[2:2 + self.fields])
        self.combos = list(itertools.product(*(range(n) for n in self.field_sizes)))
        chains = []
        for w in range(len(space.width_mults)):
            nets = [list(space.build(space.decode([w] + ([len(space.depths) - 1] + list(combo) * depth) * stages),
                                     self.input_shape, num_classes)) for combo in self.combos]
            if not all(isinstance(layer, nn.Module) for layer in nets[0]):
                raise NasforgeError("mobilenet supernet: the space's network is not a chain of modules")
            blocks = nn.ModuleList(nn.ModuleList(nn.ModuleList(net[STEM + s * depth + b] for net in nets)
                                                 for b in range(depth)) for s in range(stages))
            chains.append(_Chain(nn.Sequential(*nets[0][:STEM]), blocks, nn.Sequential(*nets[0][STEM + stages * depth:])))
        self.chains = nn.ModuleList(chains)

    # -- the decision layout of `MobileNetSpace`: width, then per stage its depth and max_depth blocks of fields
    def depth_index(self, stage: int) -> int:
        """The decision index of `stage`'s depth."""
        return 1 + stage * (1 + self.space.max_depth * self.fields)

    def field_indices(self, stage: int, position: int) -> range:
        """The decision indices of the block at `position` of `stage`."""
        start = self.depth_index(stage) + 1 + position * self.fields
        return range(start, start + self.fields)

    def candidate(self, path: Sequence[int], stage: int, position: int) -> int:
        """The candidate index of the block at (`stage`, `position`) on `path`."""
        return self.combos.index(tuple(path[i] for i in self.field_indices(stage, position)))

    @property
    def derivable(self) -> torch.Tensor:
        sizes = self.sizes
        return torch.arange(max(sizes))[None, :] < torch.tensor(sizes)[:, None]

    def network(self, path: Sequence[int]) -> nn.Sequential:
        """The chain of this supernet's own modules on `path` (shared, not copies): the subnet's layers in order."""
        chain = self.chains[path[0]]
        blocks = [chain.blocks[s][b][self.candidate(path, s, b)]
                  for s in range(len(self.space.widths)) for b in range(self.space.depths[path[self.depth_index(s)]])]
        return nn.Sequential(*chain.stem, *blocks, *chain.head)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None,
                path: Sequence[int] | None = None) -> torch.Tensor:
        if path is None:
            raise NasforgeError("mobilenet supernet: give a path (mixed mode, every candidate summed, is not offered)")
        path = tuple(int(i) for i in path)
        if weights is None:
            return self.network(path)(x)
        chain = self.chains[path[0]]
        x = chain.stem(x)
        shallowest = min(self.space.depths)
        for s in range(len(self.space.widths)):
            d = self.depth_index(s)
            for b in range(self.space.depths[path[d]]):
                gate = math.prod(weights[i, path[i]] for i in self.field_indices(s, b))
                if b >= shallowest:
                    gate = gate * weights[d, path[d]]
                y = chain.blocks[s][b][self.candidate(path, s, b)](x)
                x = x + gate * (y - x) if y.shape == x.shape else gate * y
        logits = weights[0, path[0]] * chain.head(x)
        chosen = weights[torch.arange(len(path)), torch.tensor(path, device=weights.device)]
        return logits + (weights.sum() - chosen.sum())

    def extract(self, arch: Arch) -> nn.Module:
        net = self.space.build(arch, self.input_shape, self.num_classes)
        net.load_state_dict({k: v.clone() for k, v in self.network(self.path(arch)).state_dict().items()})
        return net.to(next(self.parameters()).device)

    def unit_costs(self, cost: Callable[[nn.Sequential], list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per width, the cost of its fixed layers (stem and head), and per (width, stage, position,
        candidate) the cost of that block: `cost` gives one number per layer of a chain (`network`)."""
        stages, depth = len(self.space.widths), self.space.max_depth
        fixed = torch.zeros(len(self.chains), dtype=torch.float64)
        blocks = torch.zeros(len(self.chains), stages, depth, len(self.combos), dtype=torch.float64)
        for w in range(len(self.chains)):
            for c, combo in enumerate(self.combos):
                net = self.network([w] + ([len(self.space.depths) - 1] + list(combo) * depth) * stages)
                costs = list(cost(net))
                if len(costs) != len(net):
                    raise NasforgeError(f"unit costs: expected one per layer ({len(net)}), got {len(costs)}")
                blocks[w, :, :, c] = torch.tensor(costs[STEM:STEM + stages * depth], dtype=torch.float64).view(stages, depth)
                fixed[w] = sum(costs[:STEM]) + sum(costs[STEM + stages * depth:])
        return fixed, blocks

    def expected_cost(self, probs: torch.Tensor, fixed: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
        """The expected cost of a network whose decisions are drawn independently with `probs` (a
        (choices, max options) tensor of rows summing to one), given `unit_costs`: exact, and
        differentiable in `probs` (ProxylessNAS' E[LAT], Cai et al., 2019, Eq. 5, over this space's factored
        decisions: a block's candidate costs weighted by the product of its field probabilities, a stage's
        blocks by the probability that its depth reaches them, each width by its probability)."""
        probs = probs.to(torch.float64)
        fixed, blocks = fixed.to(probs.device), blocks.to(probs.device)
        rows = [probs[i, :n] for i, n in enumerate(self.sizes)]
        total = probs.new_zeros(())
        for w in range(len(self.chains)):
            cost = fixed[w]
            for s in range(len(self.space.widths)):
                reach = torch.stack([sum(rows[self.depth_index(s)][k] for k, d in enumerate(self.space.depths) if d > b)
                                     + probs.new_zeros(()) for b in range(self.space.max_depth)])
                for b in range(self.space.max_depth):
                    table = blocks[w, s, b].view(self.field_sizes)
                    for i in self.field_indices(s, b):
                        table = torch.tensordot(rows[i], table, dims=([0], [0]))
                    cost = cost + reach[b] * table
            total = total + rows[0][w] * cost
        return total
