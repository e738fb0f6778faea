"""The one loop every one-shot method trains its supernet with: epochs, splits, metric log, checkpoints.

A method (`Darts`, `Gdas`, `Spos`, `Enas`, `Proxyless`) says only what one step does with a training batch and a
validation batch, what it learns besides the supernet's weights, and which architectures it proposes
when training ends. The loop owns the rest: the weights' SGD with momentum under a per-epoch cosine
schedule (DARTS' recipe: lr 0.025 to 0.001, momentum 0.9, weight decay 3e-4, gradient norm clipped
at 5), shuffling and crop-flip augmentation, one log row per epoch, and a checkpoint after every epoch
holding weights, the method's state, optimiser states and RNG state, so that `fit` on a killed run's
checkpoint continues exactly as the uninterrupted run (same batches, same samples, same numbers).
With `devices` (two or more) the loop runs data-parallel, one process per device, each rank on its shard
of every batch (`nasforge.oneshot.distributed`).

Every random choice (shuffling, augmentation, sampled paths, Gumbel noise, alpha initialisation)
draws from the trainer's own `torch.Generator`; weight initialisation runs under a forked, seeded
global RNG that is restored afterwards.
"""

from __future__ import annotations

import math
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from nasforge.data.datasets import Dataset
from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.estimators.training import check_device, check_number, check_whole, default_augment, random_crop_flip
from nasforge.objective import Objective
from nasforge.oneshot.distributed import all_reduce_mean, check_devices, fit_data_parallel
from nasforge.oneshot.supernet import Supernet
from nasforge.spaces.base import Arch, HasSupernet, SearchSpace
from nasforge.spaces.choices import ChoiceSpace
from nasforge.strategies.base import Strategy
from nasforge.threads import torch_threads

__all__ = ["OneShot", "Listed"]


class OneShot(ABC):
    """Trains the supernet of `space` on `data`'s training split for `epochs` epochs (validation split
    for the methods that learn from it); `fit` returns the per-epoch log, `proposals` the strategy that
    proposes the architectures to evaluate with the trained weights afterwards. It trains on `device`
    (default: cuda when present), or data-parallel on `devices`, two or more (the result on the first).
    `bn_affine=False` builds the supernet's candidate ops with BatchNorms that learn no scale and shift, as
    the NAS-Bench-201 and DARTS search code do (cell spaces only); extracted subnets get scale 1, shift 0."""

    name = ""

    def __init__(self, *, space: SearchSpace, data: Dataset, epochs: int = 50, batch_size: int = 64,
                 lr: float = 0.025, lr_min: float = 0.001, momentum: float = 0.9, weight_decay: float = 3e-4,
                 grad_clip: float = 5.0, augment: bool | None = None, seed: int = 0, device: str | None = None,
                 devices: list[str] | None = None, threads: int | None = None, bn_affine: bool = True) -> None:
        if not isinstance(space, ChoiceSpace) or not isinstance(space, HasSupernet):
            raise NasforgeError(f"space: one-shot method '{self.name}' needs a space with a supernet, "
                                f"'{getattr(space, 'name', space)}' has none")
        if not isinstance(data, Dataset):
            raise NasforgeError(f"data: expected a Dataset (nasforge.data.load_dataset), got {type(data).__name__}")
        check_whole("epochs", epochs, 1)
        check_whole("batch_size", batch_size, 2)  # BatchNorm needs two images per batch
        check_whole("seed", seed, 0)
        if threads is not None:
            check_whole("threads", threads, 1)
        for field, value in (("lr", lr), ("lr_min", lr_min), ("weight_decay", weight_decay), ("grad_clip", grad_clip)):
            check_number(field, value, 0.0, math.inf)
        check_number("momentum", momentum, 0.0, 1.0, upper_open=True)
        if augment not in (None, True, False):
            raise NasforgeError(f"augment: must be true, false or null (auto), got {augment!r}")
        if bn_affine not in (True, False):
            raise NasforgeError(f"bn_affine: must be true or false, got {bn_affine!r}")
        if device is not None:
            check_device(device)
        if devices is not None:
            if device is not None:
                raise NasforgeError("devices: give device (one) or devices (several, data-parallel), not both")
            devices = check_devices(devices)
            if batch_size % len(devices) or batch_size < 2 * len(devices):
                raise NasforgeError(f"batch_size: {batch_size} does not split into {len(devices)} equal shards of at "
                                    f"least 2 images, one per device (allowed: a multiple of {len(devices)}, >= {2 * len(devices)})")
        if min(len(data.y_train), len(data.y_val)) < batch_size:
            raise NasforgeError(f"batch_size: {batch_size} is more than the training ({len(data.y_train)}) "
                                f"or validation ({len(data.y_val)}) images")
        self.space, self.data, self.epochs, self.batch_size = space, data, epochs, batch_size
        self.lr, self.lr_min, self.momentum, self.weight_decay, self.grad_clip = lr, lr_min, momentum, weight_decay, grad_clip
        self.augment, self.seed, self.device, self.devices, self.threads = augment, seed, device, devices, threads
        self.bn_affine = bn_affine
        self._rank, self._world = 0, 1  # this process' rank among the data-parallel ranks, and their number
        self.supernet: Supernet | None = None
        self.log: list[dict[str, Any]] = []

    # -- what a method defines ----------------------------------------------------------------------
    @abstractmethod
    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step on a training batch (and, for methods that learn from it, a validation
        batch); returns the training loss and logits (detached)."""

    def proposals(self, objective: Objective) -> Strategy:
        """The strategy proposing the architectures to evaluate with inherited weights (default: `candidates`)."""
        return Listed(self.space, self.candidates(), objective=objective)

    def candidates(self) -> list[Arch]:
        """The architectures this method derives from its trained state."""
        raise NotImplementedError(f"{type(self).__name__} proposes through its own strategy")

    def _setup(self) -> None:
        """Create what the method learns besides the weights (alphas, controller); `self.generator` is ready."""

    def _begin_epoch(self, epoch: int) -> None:
        """Set the epoch's schedules (epochs count from 0)."""

    def monitor(self) -> dict[str, Any]:
        """Extra columns of the epoch's log row."""
        return {}

    def _method_state(self) -> dict[str, Any]:
        return {}

    def _load_method_state(self, state: dict[str, Any]) -> None:
        pass

    # -- the shared loop ----------------------------------------------------------------------------
    def setup(self) -> Supernet:
        """Build the supernet, its optimiser and the RNG (once); returns the supernet."""
        if self.supernet is not None:
            return self.supernet
        constructed = set(vars(self))
        self._device = torch.device(self.device or (self.devices[0] if self.devices else None)
                                    or ("cuda" if torch.cuda.is_available() else "cpu"))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            shape, classes = self.data.input_shape, self.data.num_classes
            # `affine` only when asked for: a user's space may define `supernet` without it
            supernet = self.space.supernet(shape, classes) if self.bn_affine else self.space.supernet(shape, classes, affine=False)
        self.supernet = supernet.to(self._device)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.optimizer = torch.optim.SGD(self.supernet.parameters(), lr=self.lr, momentum=self.momentum,
                                         weight_decay=self.weight_decay)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.epochs, eta_min=self.lr_min)
        d = self.data
        self._tensors = tuple(t.to(self._device) for t in (d.x_train, d.y_train, d.x_val, d.y_val))
        self._setup()
        self._built = set(vars(self)) - constructed  # what a data-parallel rank builds anew on its own device
        return self.supernet

    def fit(self, *, checkpoint: str | Path | None = None,
            on_epoch: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Train until `epochs` epochs are done, continuing from `checkpoint` when it exists and saving it
        after every epoch; `on_epoch` sees each new log row. Returns the whole log."""
        self.setup()
        path = None if checkpoint is None else Path(checkpoint)
        if path is not None and path.is_file():  # on the CPU first: the generator's state must stay there
            self.load_state_dict(torch.load(path, map_location="cpu", weights_only=False))
        if self.devices and len(self.devices) > 1 and len(self.log) < self.epochs:
            return fit_data_parallel(self, path, on_epoch)
        self._train(path, on_epoch)
        return self.log

    def _train(self, path: Path | None, on_epoch: Callable[[dict[str, Any]], None] | None) -> None:
        """The epochs left, on this process' shard of every batch (all of it on one device)."""
        x_train, y_train, x_val, y_val = self._tensors
        steps = len(y_train) // self.batch_size  # the remainder is dropped: shuffling covers it
        size = self.batch_size // self._world
        shard = slice(self._rank * size, (self._rank + 1) * size)
        augment = default_augment(self.data.input_shape) if self.augment is None else self.augment
        pad = max(1, min(self.data.input_shape[1:]) // 8)  # 4 px on 32 px images, the CIFAR recipe
        with torch_threads(self.threads or torch.get_num_threads()):
            for epoch in range(len(self.log), self.epochs):
                tick = time.perf_counter()
                self._begin_epoch(epoch)
                lr = self.optimizer.param_groups[0]["lr"]
                order = torch.randperm(len(y_train), generator=self.generator)[: steps * self.batch_size]
                val_order = torch.randperm(len(y_val), generator=self.generator)
                losses = torch.zeros(steps, device=self._device)
                correct = torch.zeros((), device=self._device)
                self.supernet.train()
                for s in range(steps):
                    batch = order[s * self.batch_size:(s + 1) * self.batch_size].to(self._device)
                    val_batch = val_order[torch.arange(s * self.batch_size, (s + 1) * self.batch_size) % len(y_val)]
                    xb, yb = x_train[batch], y_train[batch]
                    if augment:  # the whole batch: every rank draws the same numbers, then keeps its shard
                        xb = random_crop_flip(xb, pad, self.generator)
                    val_batch = val_batch[shard].to(self._device)
                    xb, yb = xb[shard], yb[shard]
                    loss, logits = self.step(xb, yb, x_val[val_batch], y_val[val_batch])
                    losses[s] = loss
                    correct += (logits.argmax(1) == yb).sum()
                self.schedule.step()
                self.mean_over_ranks(losses, correct, *(b for b in self.supernet.buffers() if b.is_floating_point()))
                train_loss = losses.mean().item()
                if not math.isfinite(train_loss):
                    raise FloatingPointError(f"diverged: training loss is {train_loss} in epoch {epoch + 1}")
                row = {"epoch": epoch + 1, "train_loss": train_loss,
                       "train_acc": 100.0 * correct.item() / (steps * size), "lr": lr,
                       **self.monitor(), "seconds": time.perf_counter() - tick}
                self.log.append(row)
                if path is not None:
                    _save_atomically(self.state_dict(), path)
                if on_epoch is not None:
                    on_epoch(row)

    def weight_step(self, loss: torch.Tensor | None = None) -> None:
        """Backpropagate `loss` to the weights and take one clipped SGD step (data-parallel: on the
        gradients averaged over the ranks); without `loss`, the step takes the gradients the method has
        accumulated since zeroing them (several paths backpropagated one at a time)."""
        if loss is not None:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        self.mean_over_ranks(*(p.grad for p in self.supernet.parameters() if p.grad is not None))
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), self.grad_clip)
        self.optimizer.step()

    def mean_over_ranks(self, *tensors: torch.Tensor) -> None:
        """Average `tensors` in place over the data-parallel ranks (on one device: nothing to do)."""
        if self._world > 1 and tensors:
            all_reduce_mean(tensors)

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimiser and schedule states, the RNG state, the log and the method's own state."""
        return {"supernet": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "generator": self.generator.get_state(),
                "log": list(self.log), "method": self._method_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.setup()
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.generator.set_state(state["generator"])
        self.log = list(state["log"])
        self._load_method_state(state["method"])

    def sample_path(self) -> tuple[int, ...]:
        """One option per decision, uniformly at random (from the trainer's generator)."""
        return tuple(int(torch.randint(n, (1,), generator=self.generator)) for n in self.supernet.sizes)

    @staticmethod
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)


class Listed(Strategy):
    """Proposes a fixed list of architectures, in order (what a differentiable method derives)."""

    def __init__(self, space: SearchSpace, archs: list[Arch], *, objective: Objective | None = None) -> None:
        super().__init__(space, objective=objective)
        self.archs, self.asked = list(archs), 0

    def ask(self) -> Arch:
        if self.asked >= len(self.archs):
            raise NasforgeError(f"budget: this method proposes {len(self.archs)} architectures; lower the budget")
        self.asked += 1
        return self.archs[self.asked - 1]

    def tell(self, arch: Arch, result: Result) -> None:
        pass  # the list is fixed: results change nothing


def _save_atomically(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file, then rename: a kill at any instant leaves the old or the new checkpoint."""
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)
