"""An ensemble of small MLPs as a performance predictor with uncertainty (White, Neiswanger & Savani,
2021, "BANANAS: Bayesian Optimization with Neural Architectures for Neural Architecture Search").

The members' mean is the prediction and their spread the uncertainty that an acquisition function
trades off against it (BANANAS section 3: an ensemble of 5 is as calibrated as a Bayesian network at a
fraction of the cost). The members differ in their random initialisation and, by default, in the
bootstrap resample of the data each one is trained on (bagging): on the few dozen results of an
early search, initialisations alone give members that agree far from the data, and so too little
exploration.

The members are trained together as one batch of weight matrices (one `baddbmm` per layer for all of
them) with full-batch Adam on the mean absolute error of standardised targets (the paper's MAE loss)
for a fixed number of steps, so a fit costs the same on 20 results as on 300.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from nasforge.errors import NasforgeError
from nasforge.threads import torch_threads

__all__ = ["MLPEnsemble"]


class MLPEnsemble:
    """`members` ReLU MLPs of `hidden` widths; `fit(x, y)` then `predict(x) -> (mean, std)`.

    `steps` Adam steps of learning rate `lr` train from a fresh initialisation; with `refit_steps`
    set, a later fit on as many features continues from the earlier weights for that many steps
    instead (one new result changes little of what the members learned: a search refits after every
    result at a fraction of the cost). `bootstrap` trains each member on its own resample of the data.

    Seeded by `seed` through its own `torch.Generator`: the global RNG is never touched. `threads` is
    the number of intra-op threads during fit and predict (restored afterwards): these matrices are
    too small to gain from more, and on shared cores more threads cost many times over.

    >>> x = np.eye(8, dtype=np.float32); y = np.arange(8.0)
    >>> mean, std = MLPEnsemble(seed=0, bootstrap=False).fit(x, y).predict(x)
    >>> bool(np.corrcoef(mean, y)[0, 1] > 0.9)
    True
    """

    def __init__(self, *, members: int = 5, hidden: Sequence[int] = (20, 20, 20), steps: int = 200,
                 refit_steps: int | None = None, lr: float = 0.01, bootstrap: bool = True, seed: int = 0,
                 threads: int = 1) -> None:
        counts = [("members", members), ("steps", steps), ("threads", threads), *(("hidden", h) for h in hidden)]
        if refit_steps is not None:
            counts.append(("refit_steps", refit_steps))
        for name, value in counts:
            if type(value) is not int or value < 1:
                raise NasforgeError(f"{name}: expected a positive integer, got {value!r}")
        if not hidden:
            raise NasforgeError("hidden: expected at least one hidden layer width, got none")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise NasforgeError(f"lr: expected a positive number, got {lr!r}")
        if type(bootstrap) is not bool:
            raise NasforgeError(f"bootstrap: expected true or false, got {bootstrap!r}")
        self.members = members
        self.hidden = tuple(hidden)
        self.steps = steps
        self.refit_steps = refit_steps
        self.lr = lr
        self.bootstrap = bootstrap
        self.seed = seed
        self.threads = threads
        self._flat: torch.Tensor | None = None  # every weight, then every bias, of all members
        self._features = 0  # the width of the encodings fitted on
        self._y_mean = 0.0
        self._y_std = 1.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> MLPEnsemble:
        """Train every member on encodings `x` (n, d) and targets `y` (n,)."""
        x_t, y_t = _inputs(x), torch.as_tensor(np.asarray(y, dtype=np.float32))
        if y_t.shape != (len(x_t),) or len(y_t) == 0:
            raise NasforgeError(f"y: expected {len(x_t)} targets (one per row of x), got shape {tuple(y_t.shape)}")
        n = len(y_t)
        self._y_mean = float(y_t.mean())
        spread = float(y_t.std()) if n > 1 else 0.0
        self._y_std = spread if spread > 0 else 1.0
        target = (y_t - self._y_mean) / self._y_std
        generator = torch.Generator().manual_seed(self.seed)
        shapes, sizes = self._shapes(x_t.shape[1])
        if self.refit_steps is not None and self._flat is not None and self._features == x_t.shape[1]:
            flat, steps = self._flat.clone(), self.refit_steps
        else:
            # nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as one flat
            # tensor: Adam is then a handful of operations per step whatever the depth
            fans = [shape[1] for shape in shapes[: len(shapes) // 2]] * 2
            flat = torch.cat([(torch.rand(size, generator=generator) * 2 - 1) / math.sqrt(fan)
                              for size, fan in zip(sizes, fans)])
            steps = self.steps
        if self.bootstrap:  # how often each member's resample holds each result
            picks = torch.randint(n, (self.members, n), generator=generator)
            weights = torch.zeros(self.members, n).scatter_add_(1, picks, torch.ones(self.members, n))
        else:
            weights = torch.ones(self.members, n)
        flat.requires_grad_()
        first, second = torch.zeros_like(flat), torch.zeros_like(flat)
        beta1, beta2 = 0.9, 0.999  # Adam's defaults
        with torch_threads(self.threads):
            for step in range(1, steps + 1):
                params = [p.view(shape) for p, shape in zip(flat.split(sizes), shapes)]
                loss = ((self._forward(params, x_t) - target).abs() * weights).mean()
                (grad,) = torch.autograd.grad(loss, flat)
                with torch.no_grad():
                    first.lerp_(grad, 1 - beta1)
                    second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    scale = self.lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                    flat.addcdiv_(first, second.sqrt().add_(1e-8), value=-scale)
        self._flat, self._features = flat.detach(), x_t.shape[1]
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The members' mean prediction and their standard deviation, per row of `x`."""
        if self._flat is None:
            raise NasforgeError("predictor: call fit before predict")
        x_t = _inputs(x)
        if x_t.shape[1] != self._features:
            raise NasforgeError(f"x: expected the {self._features} features fitted on, got {x_t.shape[1]}")
        shapes, sizes = self._shapes(x_t.shape[1])
        params = [p.view(shape) for p, shape in zip(self._flat.split(sizes), shapes)]
        with torch_threads(self.threads), torch.no_grad():
            out = self._forward(params, x_t) * self._y_std + self._y_mean
        return out.mean(0).double().numpy(), out.std(0, unbiased=False).double().numpy()

    def _shapes(self, features: int) -> tuple[list[tuple[int, int, int]], list[int]]:
        """The shapes of the weights (members, fan_in, fan_out), then of the biases, and their sizes."""
        dims = [features, *self.hidden, 1]
        shapes = [(self.members, a, b) for a, b in zip(dims, dims[1:])] + [(self.members, 1, b) for b in dims[1:]]
        return shapes, [math.prod(shape) for shape in shapes]

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
