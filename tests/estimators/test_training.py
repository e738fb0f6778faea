"""The training estimator: real training of small networks on digits and on a small RGB set made here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from nasforge import NasforgeError, define_space
from nasforge.data import load_dataset
from nasforge.estimators.training import TrainingEstimator, default_augment, random_crop_flip, trial_seed
from nasforge.runner.executors import evaluate_safely

METRICS = {"val_acc", "val_loss", "test_acc", "test_loss", "train_loss", "train_acc", "epochs", "params", "flops"}


def _build(cfg: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    c, h, w = input_shape
    width = cfg["width"]
    if cfg["kind"] == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, width), nn.ReLU(), nn.Linear(width, num_classes))
    return nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16 * width, num_classes))


@pytest.fixture(scope="module")
def space():
    return define_space("tiny", {"kind": ["mlp", "cnn"], "width": [16, 64]}, _build)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    """A small learnable RGB set: 4 classes of 32 x 32 images, a class colour plus noise and a random bright square."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]])
    x = colours[y][:, None, None, :] + rng.normal(0, 30, (120, 32, 32, 3))
    for i, (r, c) in enumerate(rng.integers(0, 24, (120, 2))):
        x[i, r : r + 8, c : c + 8] += 50
    path = tmp_path_factory.mktemp("rgb") / "rgb.npz"
    np.savez(path, x=np.clip(x, 0, 255).astype(np.uint8), y=y)
    return load_dataset(str(path))


def _trainer(space, data, **options) -> TrainingEstimator:
    """One CPU thread (these tiny networks gain nothing from more, and on a loaded machine more threads are
    many times slower) and no latency timing, unless the test asks."""
    return TrainingEstimator(**({"space": space, "data": data, "threads": 1, "latency": False} | options))


def _arch(space, kind="mlp", width=64):
    return space.validate({"kind": kind, "width": width})


def _timeless(result):
    """Metrics and curve without the wall-clock entries, which differ between equal runs."""
    return result.metrics, [{k: v for k, v in row.items() if k != "seconds"} for row in result.curve]


@pytest.mark.parametrize("kind, width", [("mlp", 64), ("cnn", 16)])
def test_trains_digits_to_high_accuracy(space, digits, kind, width):
    # measured: mlp-64 95.0 % and cnn-16 95.8 % val_acc (test 93.1 %, 93.6 %) after 4 epochs, seed 0
    result = _trainer(space, digits, epochs=4, latency=True).evaluate(_arch(space, kind, width))
    m = result.metrics
    assert result.ok and result.fidelity == 4.0 and result.cost_s > 0
    assert set(m) == METRICS | {"latency_ms"}
    assert m["val_acc"] > 90 and m["test_acc"] > 88 and m["train_acc"] > 85
    assert m["epochs"] == 4 and len(result.curve) == 4
    assert [row["epoch"] for row in result.curve] == [1, 2, 3, 4]
    best = max(result.curve, key=lambda row: row["val_acc"])  # the reported epoch is the best validation one
    assert (m["val_acc"], m["val_loss"], m["train_loss"]) == (best["val_acc"], best["val_loss"], best["train_loss"])
    assert all(math.isfinite(m[k]) for k in METRICS) and m["latency_ms"] > 0
    # by hand: mlp 64*64+64 + 64*10+10 parameters, 2 x (64*64 + 64*10) FLOPs; cnn conv 1*16*9+16, BN 2*16,
    # linear 256*10+10 parameters, 2 x (16*9 * 8*8 + 256*10) FLOPs (PyTorch's count: 2 per multiply-add)
    assert (m["params"], m["flops"]) == {"mlp": (4810, 9472), "cnn": (2762, 23552)}[kind]


def test_cosine_schedule_and_fidelity_set_the_epochs(space, digits):
    estimator = _trainer(space, digits, epochs=5)
    one, three = estimator.evaluate(_arch(space), 1), estimator.evaluate(_arch(space), 3.0)
    assert (len(one.curve), one.fidelity, one.metrics["epochs"]) == (1, 1.0, 1)
    assert (len(three.curve), three.fidelity, three.metrics["epochs"]) == (3, 3.0, 3)
    # 1077 // 64 = 16 steps an epoch, cosine over 48 steps: epoch e starts at 0.05 * (1 + cos(pi (e-1) / 3)) / 2
    assert [row["lr"] for row in three.curve] == pytest.approx([0.05, 0.0375, 0.0125])
    for bad in (0, 2.5, "3", True):
        with pytest.raises(NasforgeError, match="fidelity: epochs must be a whole number >= 1"):
            estimator.evaluate(_arch(space), bad)


def test_same_seed_same_result_and_the_global_rng_untouched(space, digits):
    arch = _arch(space, "cnn", 16)
    estimator = _trainer(space, digits, epochs=2)
    torch.manual_seed(1)
    state = torch.get_rng_state()
    first = estimator.evaluate(arch)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's stream goes on as if nothing happened
    torch.manual_seed(2)  # a different global state changes nothing either
    second = _trainer(space, digits, epochs=2).evaluate(arch)
    assert _timeless(first) == _timeless(second)


def test_other_seed_or_arch_gives_another_run(space, digits):
    arch = _arch(space)
    runs = [_trainer(space, digits, epochs=2, seed=s).evaluate(arch) for s in (0, 1)]
    assert _timeless(runs[0])[1] != _timeless(runs[1])[1]
    assert trial_seed(0, arch.key) != trial_seed(1, arch.key) != trial_seed(1, _arch(space, width=16).key)
    assert trial_seed(0, arch.key) == 2407957304492860366  # sha256-based: the same in every process


def test_early_stopping_when_validation_stops_improving(space, digits):
    # lr = 0: the weights never change, so validation accuracy never beats epoch 1 and patience 2 ends at epoch 3
    estimator = _trainer(space, digits, epochs=10, lr=0.0, patience=2)
    result = estimator.evaluate(_arch(space))
    assert result.metrics["epochs"] == 3 and len(result.curve) == 3 and result.fidelity == 10.0
    assert len({row["val_acc"] for row in result.curve}) == 1
    assert result.metrics["val_acc"] == result.curve[0]["val_acc"]


def test_divergence_raises_and_the_runner_records_a_failed_trial(space, digits):
    estimator = _trainer(space, digits, epochs=2, lr=1e6)
    with pytest.raises(FloatingPointError, match=r"diverged: loss is (nan|inf) at epoch 1, step \d+"):
        estimator.evaluate(_arch(space))
    result = evaluate_safely(estimator, _arch(space), None, None)
    assert not result.ok and "diverged" in result.error


def test_threads_apply_within_the_call_only(digits):
    seen = []

    def build(cfg, input_shape, num_classes):
        seen.append(torch.get_num_threads())
        return _build(cfg, input_shape, num_classes)

    space = define_space("threads", {"kind": ["mlp"], "width": [16]}, build)
    before = torch.get_num_threads()
    _trainer(space, digits, epochs=1, threads=before + 1).evaluate(space.sample(np.random.default_rng(0)))
    assert seen == [before + 1] and torch.get_num_threads() == before


def test_adam_label_smoothing_and_augmentation_on_rgb(space, rgb):
    assert rgb.input_shape == (3, 32, 32) and default_augment(rgb.input_shape)
    arch = _arch(space, "cnn", 16)

    def run(**options):
        return _trainer(space, rgb, epochs=3, batch_size=16, optimizer="adam", label_smoothing=0.1,
                        **options).evaluate(arch)

    auto, on, off = run(), run(augment=True), run(augment=False)
    assert _timeless(auto) == _timeless(on)  # auto augments 32 px RGB images
    assert _timeless(on)[1] != _timeless(off)[1]
    for result in (on, off):
        assert result.ok and len(result.curve) == 3 and all(math.isfinite(result.metrics[k]) for k in METRICS)
        assert result.curve[0]["lr"] == pytest.approx(1e-3)  # Adam's default
    assert max(row["val_acc"] for row in off.curve) > 50  # 4 classes: chance is 25 %


def test_digits_are_not_augmented_by_default(space, digits):
    assert not default_augment(digits.input_shape) and not default_augment((1, 32, 32))
    # threads=None: torch's own setting, the default path
    runs = [_trainer(space, digits, epochs=1, augment=a, threads=None).evaluate(_arch(space)) for a in (None, False)]
    assert _timeless(runs[0]) == _timeless(runs[1])


def test_random_crop_flip_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(64 * 2 * 5 * 5, dtype=torch.float32).view(64, 2, 5, 5) + 1  # no zeros but the padding's
    out = random_crop_flip(x, 2, torch.Generator().manual_seed(0))
    again = random_crop_flip(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out, again)
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    found = set()
    for i in range(64):
        matches = [(dy, dx, f) for dy in range(5) for dx in range(5) for f in (False, True)
                   if torch.equal(out[i], (lambda w: w.flip(2) if f else w)(padded[i, :, dy : dy + 5, dx : dx + 5]))]
        assert len(matches) == 1
        found.add(matches[0])
    assert {f for _, _, f in found} == {False, True} and len({(dy, dx) for dy, dx, _ in found}) > 15


@pytest.mark.parametrize("options, message", [
    ({"epochs": 0}, "epochs: must be a whole number >= 1, got 0"),
    ({"epochs": 2.0}, "epochs: must be a whole number"),
    ({"batch_size": 0}, "batch_size: must be a whole number >= 1"),
    ({"eval_batch_size": -1}, "eval_batch_size"),
    ({"optimizer": "rmsprop"}, r"optimizer: 'rmsprop' is not allowed \(allowed: sgd, adam\)"),
    ({"lr": -0.1}, "lr: must be a finite number in >= 0"),
    ({"lr": float("nan")}, "lr: must be a finite number"),
    ({"momentum": 1.0}, r"momentum: must be a finite number in \[0, 1\)"),
    ({"weight_decay": -1e-4}, "weight_decay"),
    ({"label_smoothing": 1.0}, r"label_smoothing: must be a finite number in \[0, 1\)"),
    ({"augment": "yes"}, "augment: must be true, false or null"),
    ({"patience": 0}, "patience: must be a whole number >= 1"),
    ({"seed": -1}, "seed: must be a whole number >= 0"),
    ({"threads": 0}, "threads: must be a whole number >= 1"),
    ({"latency": "no"}, "latency: must be true or false"),
    ({"device": "tpu-9"}, "device: 'tpu-9' is not a torch device"),
    ({"space": "nb201"}, "space: expected a SearchSpace, got str"),
    ({"data": "digits"}, r"data: expected a Dataset \(nasforge.data.load_dataset\), got str"),
])
def test_bad_options_are_refused(space, digits, options, message):
    with pytest.raises(NasforgeError, match=message):
        TrainingEstimator(**({"space": space, "data": digits} | options))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_a_gpu_is_refused(space, digits):
    with pytest.raises(NasforgeError, match="device: 'cuda' asked for but CUDA is not available"):
        TrainingEstimator(space=space, data=digits, device="cuda")
