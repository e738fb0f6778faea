"""An ensemble of small MLPs as a performance predictor with uncertainty (White, Neiswanger & Savani,
2021, "BANANAS: Bayesian Optimization with Neural Architectures for Neural Architecture Search").

The members differ only in their random initialisation; their mean is the prediction and their spread
the uncertainty that the acquisition function trades off against it (BANANAS section 3: an ensemble
of 5 is as calibrated as BOHAMIANN's Bayesian network at a fraction of the cost).

The members are trained together as one batch of weight matrices (one `baddbmm` per layer for all of
them), full-batch Adam on the mean absolute error of standardised targets (the paper's MAE loss),
a fixed number of steps: on the few hundred architectures a search sees, the cost of a fit is then
independent of the data size, a few tens of milliseconds.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from nasforge.errors import NasforgeError
from nasforge.threads import torch_threads


BOOTSTRAP = False
PRIOR = 0.0


class MLPEnsemble:
    """`members` ReLU MLPs of `hidden` widths; `fit(x, y)` then `predict(x) -> (mean, std)`.

    Seeded by `seed` through its own `torch.Generator`: the global RNG is never touched. `threads` is
    the number of intra-op threads during fit and predict (restored afterwards): these matrices are
    too small to gain from more, and on shared cores more threads cost many times over.

    >>> x = np.eye(8, dtype=np.float32); y = np.arange(8.0)
    >>> mean, std = MLPEnsemble(seed=0).fit(x, y).predict(x)
    >>> bool(np.corrcoef(mean, y)[0, 1] > 0.9)
    True
    """

    def __init__(self, *, members: int = 5, hidden: Sequence[int] = (32, 32, 32), steps: int = 200,
                 refit_steps: int | None = None, lr: float = 0.01, seed: int = 0, threads: int = 1) -> None:
        counts = (("members", members), ("steps", steps), ("threads", threads), *(("hidden", h) for h in hidden))
        for name, value in (*counts, *((("refit_steps", refit_steps),) if refit_steps is not None else ())):
            if type(value) is not int or value < 1:
                raise NasforgeError(f"{name}: expected a positive integer, got {value!r}")
        if not lr > 0:
            raise NasforgeError(f"lr: expected a positive number, got {lr!r}")
        self.members = members
        self.hidden = tuple(hidden)
        self.steps = steps
        self.refit_steps = refit_steps
        self.lr = lr
        self.seed = seed
        self.threads = threads
        self._flat: torch.Tensor | None = None  # every weight, then every bias, of all members
        self._y_mean = 0.0
        self._y_std = 1.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> MLPEnsemble:
        """Train every member on `x` (n, d) and targets `y` (n,): `steps` steps from a fresh seeded
        initialisation, or, with `refit_steps` set and an earlier fit on as many features, that many
        steps on from the earlier weights (a new result or two change little of what they learned)."""
        x_t, y_t = _inputs(x), torch.as_tensor(np.asarray(y, dtype=np.float32))
        if y_t.ndim != 1 or len(y_t) != len(x_t) or len(y_t) == 0:
            raise NasforgeError(f"y: expected {len(x_t)} targets (one per row of x), got shape {tuple(y_t.shape)}")
        self._y_mean = float(y_t.mean())
        self._y_std = float(y_t.std()) if len(y_t) > 1 and float(y_t.std()) > 0 else 1.0
        target = (y_t - self._y_mean) / self._y_std
        generator = torch.Generator().manual_seed(self.seed)
        shapes, sizes = self._shapes(x_t.shape[1])
        steps = self.steps
        if self.refit_steps is not None and self._flat is not None and len(self._flat) == sum(sizes):
            flat, steps = self._flat.clone(), self.refit_steps
        else:
            flat = self._init(x_t.shape[1], generator)
        flat.requires_grad_()
        prior = self._prior(x_t)
        first, second = torch.zeros_like(flat), torch.zeros_like(flat)
        if BOOTSTRAP:
            picks = torch.randint(len(target), (self.members, len(target)), generator=generator)
            weights = torch.zeros(self.members, len(target)).scatter_add_(1, picks, torch.ones(self.members, len(target)))
        else:
            weights = torch.ones(self.members, len(target))
        beta1, beta2 = 0.9, 0.999
        with torch_threads(self.threads):
            for step in range(1, steps + 1):
                params = [p.view(shape) for p, shape in zip(flat.split(sizes), shapes)]
                loss = ((self._forward(params, x_t) + prior - target).abs() * weights).mean()
                (grad,) = torch.autograd.grad(loss, flat)
                with torch.no_grad():
                    first.lerp_(grad, 1 - beta1)
                    second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    scale = self.lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                    flat.addcdiv_(first, second.sqrt().add_(1e-8), value=-scale)
        self._flat = flat.detach()
        return self

    def _init(self, features: int, generator: torch.Generator) -> torch.Tensor:
        """nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as one flat tensor
        (so that Adam is a handful of operations per step whatever the depth)."""
        shapes, sizes = self._shapes(features)
        fans = [shape[1] for shape in shapes[: len(shapes) // 2]] * 2
        return torch.cat([(torch.rand(size, generator=generator) * 2 - 1) / math.sqrt(fan) for size, fan in zip(sizes, fans)])

    def _prior(self, x: torch.Tensor) -> torch.Tensor:
        if not PRIOR:
            return torch.zeros(())
        shapes, sizes = self._shapes(x.shape[1])
        flat = self._init(x.shape[1], torch.Generator().manual_seed(self.seed + 1))
        with torch.no_grad():
            return PRIOR * self._forward([p.view(shape) for p, shape in zip(flat.split(sizes), shapes)], x)

    def _shapes(self, features: int) -> tuple[list[tuple[int, int, int]], list[int]]:
        """The shapes of the weights (members, fan_in, fan_out), then of the biases, and their sizes."""
        dims = [features, *self.hidden, 1]
        shapes = [(self.members, a, b) for a, b in zip(dims, dims[1:])] + [(self.members, 1, b) for b in dims[1:]]
        return shapes, [math.prod(shape) for shape in shapes]

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The members' mean prediction and their standard deviation, per row of `x`."""
        if self._flat is None:
            raise NasforgeError("predictor: call fit before predict")
        x_t = _inputs(x)
        shapes, sizes = self._shapes(x_t.shape[1])
        params = [p.view(shape) for p, shape in zip(self._flat.split(sizes), shapes)]
        with torch_threads(self.threads), torch.no_grad():
            out = (self._forward(params, x_t) + self._prior(x_t)) * self._y_std + self._y_mean
        return out.mean(0).numpy().astype(np.float64), out.std(0, unbiased=False).numpy().astype(np.float64)

    def _forward(self, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """(members, n) predictions in standardised units."""
        layers = len(params) // 2
        h = x.expand(self.members, *x.shape)
        for i in range(layers):
            h = torch.baddbmm(params[layers + i], h, params[i])
            if i < layers - 1:
                h = torch.relu(h)
        return h.squeeze(-1)


def _inputs(x: np.ndarray) -> torch.Tensor:
    x_t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if x_t.ndim != 2:
        raise NasforgeError(f"x: expected a 2-D array (architectures, features), got shape {tuple(x_t.shape)}")
    return x_t
