"""Scoring architectures with a trained supernet's weights: inherit, recalibrate BatchNorm, evaluate.

The cheap estimate one-shot search rests on (Bender et al., 2018; Guo et al., 2020): the subnet is
extracted with the supernet's weights, its BatchNorm statistics are re-estimated on `calibration_images`
training images, and it is scored on the first `eval_images` validation images (all by default).
"""

from __future__ import annotations

import time

import torch

from nasforge.data.datasets import Dataset
from nasforge.errors import NasforgeError
from nasforge.estimators.base import Estimator, Result
from nasforge.estimators.training import evaluate_model
from nasforge.hardware import count_params
from nasforge.oneshot.supernet import Supernet, recalibrate_bn
from nasforge.spaces.base import Arch
from nasforge.threads import torch_threads

__all__ = ["SupernetEstimator"]


class SupernetEstimator(Estimator):
    """Metrics `val_acc` (percent), `val_loss` (nats) of the inherited, recalibrated subnet, and its `params`."""

    def __init__(self, *, supernet: Supernet, data: Dataset, calibration_images: int = 512,
                 eval_images: int | None = None, batch_size: int = 256, threads: int | None = None) -> None:
        if not isinstance(supernet, Supernet):
            raise NasforgeError(f"supernet: expected a nasforge.oneshot.Supernet, got {type(supernet).__name__}")
        for field, value, low in (("calibration_images", calibration_images, 2), ("batch_size", batch_size, 2),
                                  ("eval_images", 1 if eval_images is None else eval_images, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise NasforgeError(f"{field}: must be a whole number >= {low}, got {value!r}")
        self.supernet, self.data, self.calibration_images = supernet, data, calibration_images
        self.eval_images, self.batch_size, self.threads = eval_images, batch_size, threads

    def evaluate(self, arch: Arch, fidelity: float | None = None) -> Result:
        start = time.perf_counter()
        device = next(self.supernet.parameters()).device
        with torch_threads(self.threads or torch.get_num_threads()):
            net = self.supernet.extract(arch)
            recalibrate_bn(net, self.data.x_train[: self.calibration_images].to(device), self.batch_size)
            n = len(self.data.y_val) if self.eval_images is None else self.eval_images
            loss, acc = evaluate_model(net, self.data.x_val[:n].to(device), self.data.y_val[:n].to(device), self.batch_size)
        return Result(metrics={"val_acc": acc, "val_loss": loss, "params": float(count_params(net))},
                      fidelity=fidelity, cost_s=time.perf_counter() - start)
