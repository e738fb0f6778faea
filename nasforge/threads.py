"""Torch's intra-op thread count for one block of code, restored afterwards."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """`count` intra-op threads inside the block. Tiny networks (predictors, controllers) run faster on one:
    on shared cores, every extra thread's barrier waits for a time slice, many times slower overall."""
    previous = torch.get_num_threads()
    if previous != count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if previous != count:
            torch.set_num_threads(previous)
