"""Training estimation: build the architecture, train it on the data set, report its best-validation epoch.

SGD with Nesterov momentum (or Adam) under a per-step cosine schedule to zero, optional label smoothing,
random-crop + horizontal-flip augmentation (the CIFAR recipe of NAS-Bench-201 and DARTS), per-epoch
validation and early stopping on validation accuracy. The reported model is the epoch with the best
validation accuracy; the test split is evaluated once, on that epoch's weights, for reporting only.

Every evaluation is a pure function of (seed, arch.key, fidelity): initialisation, dropout, shuffling
and augmentation draw from a seed hashed from both, inside `torch.random.fork_rng` so the caller's
global RNG state is left as it was.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from nasforge.data.datasets import Dataset
from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator, Result
from nasforge.hardware import model_costs
from nasforge.spaces.base import Arch, SearchSpace
from nasforge.threads import torch_threads

__all__ = ["TrainingEstimator", "check_device", "check_number", "check_whole", "default_augment", "evaluate_model",
           "fidelity_epochs", "random_crop_flip"]

#: learning rate when none is given: the usual starting points for each optimiser
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}
#: weight decay when none is given: coupled L2 suits SGD; with Adam it fights the adaptive step
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adam": 0.0}


class TrainingEstimator(Estimator):
    """Trains each architecture for `fidelity` epochs (default `epochs`) and reports its best validation epoch.

    Metrics: `val_acc`, `val_loss`, `test_acc`, `test_loss`, `train_acc`, `train_loss` (accuracies in
    percent, losses in nats; all of the best validation epoch), `epochs` (epochs run), `params`, `flops`
    and, with `latency`, `latency_ms`. `lr` and `weight_decay` default per optimiser (`DEFAULT_LR`,
    `DEFAULT_WEIGHT_DECAY`); `augment=None` augments RGB images of at least 32 px only (`default_augment`).
    A non-finite loss raises `FloatingPointError` ("diverged: ...") so the runner records a failed trial.
    """

    def __init__(self, *, space: SearchSpace, data: Dataset, epochs: int = 10, batch_size: int = 64,
                 optimizer: str = "sgd", lr: float | None = None, momentum: float = 0.9,
                 weight_decay: float | None = None, label_smoothing: float = 0.0, augment: bool | None = None,
                 patience: int | None = None, seed: int = 0, device: str | None = None, threads: int | None = None,
                 latency: bool = True, eval_batch_size: int = 512) -> None:
        if not isinstance(space, SearchSpace):
            raise NasforgeError(f"space: expected a SearchSpace, got {type(space).__name__}")
        if not isinstance(data, Dataset):
            raise NasforgeError(f"data: expected a Dataset (nasforge.data.load_dataset), got {type(data).__name__}")
        check_whole("epochs", epochs, 1)
        check_whole("batch_size", batch_size, 1)
        check_whole("eval_batch_size", eval_batch_size, 1)
        check_whole("seed", seed, 0)
        if patience is not None:
            check_whole("patience", patience, 1)
        if threads is not None:
            check_whole("threads", threads, 1)
        if optimizer not in DEFAULT_LR:
            raise NasforgeError(f"optimizer: '{optimizer}' is not allowed (allowed: {', '.join(DEFAULT_LR)})")
        if lr is not None:
            check_number("lr", lr, 0.0, math.inf)
        if weight_decay is not None:
            check_number("weight_decay", weight_decay, 0.0, math.inf)
        check_number("momentum", momentum, 0.0, 1.0, upper_open=True)
        check_number("label_smoothing", label_smoothing, 0.0, 1.0, upper_open=True)
        if augment not in (None, True, False):
            raise NasforgeError(f"augment: must be true, false or null (auto), got {augment!r}")
        if not isinstance(latency, bool):
            raise NasforgeError(f"latency: must be true or false, got {latency!r}")
        if device is not None:
            check_device(device)
        self.space, self.data, self.epochs, self.batch_size = space, data, epochs, batch_size
        self.optimizer, self.lr, self.momentum, self.weight_decay = optimizer, lr, momentum, weight_decay
        self.label_smoothing, self.augment, self.patience, self.seed = label_smoothing, augment, patience, seed
        self.device, self.threads, self.latency, self.eval_batch_size = device, threads, latency, eval_batch_size
        self._moved: tuple[torch.device, tuple[torch.Tensor, ...]] | None = None

    def evaluate(self, arch: Arch, fidelity: float | None = None) -> Result:
        """Train `arch` for `fidelity` epochs (None: `self.epochs`); raises on divergence."""
        return self.train(arch, self.epochs if fidelity is None else fidelity_epochs(fidelity))

    def train(self, arch: Arch, epochs: int, *, schedule_epochs: int | None = None,
              stop: Callable[[list[dict[str, float]]], bool] | None = None) -> Result:
        """Train `arch` for up to `epochs` epochs under a cosine schedule spanning `schedule_epochs` (default
        `epochs`), ending early after any epoch where `stop(curve so far)` is true.

        With the same arch and seed, the epochs run are the exact prefix of the `schedule_epochs`-epoch run
        (same initialisation, batches, learning rates): what learning-curve extrapolation needs.
        """
        check_whole("epochs", epochs, 1)
        if schedule_epochs is None:
            schedule_epochs = epochs
        elif isinstance(schedule_epochs, bool) or not isinstance(schedule_epochs, int) or schedule_epochs < epochs:
            raise NasforgeError(f"schedule_epochs: must be a whole number >= epochs ({epochs}), got {schedule_epochs!r}")
        start = time.perf_counter()
        device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        seed = trial_seed(self.seed, arch.key)
        gpus = range(torch.cuda.device_count()) if device.type == "cuda" else []
        with torch_threads(self.threads or torch.get_num_threads()), torch.random.fork_rng(devices=gpus):
            torch.manual_seed(seed)  # initialisation and any dropout inside the model
            model = self.space.build(arch, self.data.input_shape, self.data.num_classes).to(device)
            curve, metrics = self._train(model, epochs, device, torch.Generator().manual_seed(seed),
                                         schedule_epochs, stop)
            metrics.update(model_costs(model.cpu().eval(), self.data.input_shape, latency=self.latency))
        return Result(metrics=metrics, fidelity=float(epochs), cost_s=time.perf_counter() - start, curve=tuple(curve))

    def _train(self, model: nn.Module, epochs: int, device: torch.device, generator: torch.Generator,
               schedule_epochs: int, stop: Callable[[list[dict[str, float]]], bool] | None,
               ) -> tuple[list[dict[str, float]], dict[str, float]]:
        """The per-epoch curve and the best validation epoch's metrics; `model` ends with that epoch's weights."""
        x_train, y_train, x_val, y_val, x_test, y_test = self._splits(device)
        n = len(y_train)
        batch = min(self.batch_size, n)
        steps = n // batch  # the remainder is dropped: a batch of one breaks BatchNorm, and shuffling covers it
        optimizer = self._optimizer(model)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=schedule_epochs * steps)
        augment = default_augment(self.data.input_shape) if self.augment is None else self.augment
        pad = max(1, min(self.data.input_shape[1:]) // 8)  # 4 px on 32 px images, as the CIFAR recipe
        smoothing = self.label_smoothing

        curve: list[dict[str, float]] = []
        best_acc, best_epoch, best_state = -math.inf, 0, None
        for epoch in range(1, epochs + 1):
            tick = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            model.train()
            order = torch.randperm(n, generator=generator)[: steps * batch].view(steps, batch).to(device)
            losses = torch.zeros(steps, device=device)  # kept on the device: one sync per epoch, not per step
            correct = torch.zeros((), dtype=torch.long, device=device)
            for step in range(steps):
                xb, yb = x_train[order[step]], y_train[order[step]]
                if augment:
                    xb = random_crop_flip(xb, pad, generator)
                logits = model(xb)
                loss = F.cross_entropy(logits, yb, label_smoothing=smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                losses[step] = loss.detach()
                correct += (logits.detach().argmax(1) == yb).sum()
            step_losses = losses.tolist()
            bad = next((i for i, value in enumerate(step_losses) if not math.isfinite(value)), None)
            if bad is not None:
                raise FloatingPointError(f"diverged: loss is {step_losses[bad]} at epoch {epoch}, step {bad + 1}")
            val_loss, val_acc = evaluate_model(model, x_val, y_val, self.eval_batch_size)
            if not math.isfinite(val_loss):
                raise FloatingPointError(f"diverged: validation loss is {val_loss} at epoch {epoch}")
            curve.append({"epoch": epoch, "train_loss": sum(step_losses) / steps,
                          "train_acc": 100.0 * correct.item() / (steps * batch), "val_loss": val_loss,
                          "val_acc": val_acc, "lr": lr, "seconds": time.perf_counter() - tick})
            if val_acc > best_acc:  # ties keep the earlier epoch
                best_acc, best_epoch = val_acc, epoch
                best_state = copy.deepcopy(model.state_dict())
            elif self.patience is not None and epoch - best_epoch >= self.patience:
                break
            if stop is not None and stop(curve):
                break
        model.load_state_dict(best_state)
        test_loss, test_acc = evaluate_model(model, x_test, y_test, self.eval_batch_size)
        best = curve[best_epoch - 1]
        metrics = {"val_acc": best["val_acc"], "val_loss": best["val_loss"], "test_acc": test_acc,
                   "test_loss": test_loss, "train_loss": best["train_loss"], "train_acc": best["train_acc"],
                   "epochs": len(curve)}
        return curve, metrics

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        lr = DEFAULT_LR[self.optimizer] if self.lr is None else self.lr
        decay = DEFAULT_WEIGHT_DECAY[self.optimizer] if self.weight_decay is None else self.weight_decay
        if self.optimizer == "adam":
            return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=decay)
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=self.momentum, weight_decay=decay,
                               nesterov=self.momentum > 0)

    def _splits(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """The six split tensors on `device`, moved there once per estimator (a no-op on the CPU)."""
        if self._moved is None or self._moved[0] != device:
            d = self.data
            tensors = (d.x_train, d.y_train, d.x_val, d.y_val, d.x_test, d.y_test)
            self._moved = (device, tuple(t.to(device) for t in tensors))
        return self._moved[1]


def trial_seed(seed: int, key: str) -> int:
    """A 63-bit seed from the estimator's seed and the arch key, stable across processes (unlike `hash`)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def default_augment(input_shape: tuple[int, ...]) -> bool:
    """Whether `augment=None` augments: RGB images of at least 32 x 32 (CIFAR-like), not tiny or gray ones."""
    c, h, w = input_shape
    return c == 3 and min(h, w) >= 32


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Per image: zero-pad by `pad` px, crop back to size at a random offset, flip left-right with p = 1/2.

    Zero is the training mean after standardisation, so the padding is mean colour. One gather for the
    whole batch; offsets and flips are drawn from `generator` (on the CPU, then moved).
    """
    n, c, h, w = x.shape
    dy, dx = (torch.randint(0, 2 * pad + 1, (2, n), generator=generator)).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = dy[:, None] + torch.arange(h, device=x.device)
    columns = torch.arange(w, device=x.device).expand(n, w)
    columns = dx[:, None] + torch.where(flip[:, None], columns.flip(1), columns)
    images = torch.arange(n, device=x.device)[:, None, None, None]
    channels = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[images, channels, rows[:, None, :, None], columns[:, None, None, :]]


@torch.no_grad()
def evaluate_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """(mean cross-entropy in nats, accuracy in percent) of `model` on (x, y), without label smoothing."""
    model.eval()
    loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for i in range(0, len(y), batch_size):
        logits = model(x[i : i + batch_size])
        loss += F.cross_entropy(logits.float(), y[i : i + batch_size], reduction="sum")
        correct += (logits.argmax(1) == y[i : i + batch_size]).sum()
    return loss.item() / len(y), 100.0 * correct.item() / len(y)


def fidelity_epochs(fidelity: float) -> int:
    """A fidelity as a whole number of epochs, refusing anything else by name."""
    if isinstance(fidelity, bool) or not isinstance(fidelity, (int, float)) or fidelity < 1 or fidelity != int(fidelity):
        raise NasforgeError(f"fidelity: epochs must be a whole number >= 1, got {fidelity!r}")
    return int(fidelity)


def check_whole(field: str, value: int, minimum: int) -> None:
    """Refuse `value` unless it is an int >= `minimum` (bools refused), naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise NasforgeError(f"{field}: must be a whole number >= {minimum}, got {value!r}")


def check_number(field: str, value: float, low: float, high: float, *, upper_open: bool = False) -> None:
    """Refuse `value` unless it is a finite number in [low, high] (or [low, high)), naming `field`."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and low <= value
    if not ok or value > high or (upper_open and value == high):
        bound = f"[{low:g}, {high:g})" if upper_open else f">= {low:g}"
        raise NasforgeError(f"{field}: must be a finite number in {bound}, got {value!r}")


def check_device(device: str) -> None:
    """Refuse a device string torch cannot parse, or CUDA where none is available."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise NasforgeError(f"device: '{device}' is not a torch device (allowed: cpu, cuda, cuda:N, or null = auto)") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise NasforgeError(f"device: '{device}' asked for but CUDA is not available (allowed here: cpu, or null = auto)")
