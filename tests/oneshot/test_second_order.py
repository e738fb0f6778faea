"""Second-order DARTS: the finite-difference alpha gradient against the exact derivative through one
unrolled SGD step (autograd double backward), the weights untouched by the alpha step, the option's
validation and its way in from a config."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from nasforge.data import load_dataset
from nasforge.errors import NasforgeError
from nasforge.oneshot import create_method
from nasforge.spaces.darts import DartsSpace

SPACE = DartsSpace(channels=4, cells=3, stem_multiplier=1)


@pytest.fixture(scope="module")
def data():
    d = load_dataset("digits", seed=0)
    return replace(d, x_train=d.x_train[:64], y_train=d.y_train[:64], x_val=d.x_val[:64], y_val=d.y_val[:64])


def exact_alpha_gradient(net, alpha, xi, x, y, xv, yv):
    """d/d alpha of L_val(w - xi grad_w L_train(w, alpha), alpha), differentiated through the SGD step."""
    names, w = zip(*net.named_parameters())
    weights = torch.softmax(alpha, -1)
    train = F.cross_entropy(functional_call(net, dict(zip(names, w)), (x,), {"weights": weights}), y)
    grads = torch.autograd.grad(train, w, create_graph=True, allow_unused=True, materialize_grads=True)
    unrolled = {n: p - xi * g for n, p, g in zip(names, w, grads)}
    val = F.cross_entropy(functional_call(net, unrolled, (xv,), {"weights": weights}), yv)
    (grad,) = torch.autograd.grad(val, [alpha])
    return grad


def smoothed(module: nn.Module) -> nn.Module:
    """`module` with ReLU -> Softplus and max -> average pooling, in place: a finite difference across
    ReLU's and max pooling's kinks differs from autograd's almost-everywhere derivative (on a supernet
    this small by more than the derivative itself), so the gradients are compared where the loss is smooth."""
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, nn.Softplus(beta=2))
        elif isinstance(child, nn.MaxPool2d):
            setattr(module, name, nn.AvgPool2d(3, child.stride, 1))
        else:
            smoothed(child)
    return module


def first_order_gradient(net, alpha, xv, yv):
    (grad,) = torch.autograd.grad(F.cross_entropy(net(xv, weights=torch.softmax(alpha, -1)), yv), [alpha])
    return grad


def test_the_second_order_gradient_matches_the_exact_one_and_leaves_the_weights_alone(data):
    darts = create_method("darts", space=SPACE, data=data, order=2, lr=0.5, batch_size=32, seed=0, augment=False)
    net = smoothed(darts.setup())
    with torch.no_grad():  # away from the near-uniform init, so that alpha's second-order term matters
        darts.alpha.normal_(0, 1, generator=torch.Generator().manual_seed(1))
    x, y, xv, yv = data.x_train[:32], data.y_train[:32], data.x_val[:32], data.y_val[:32]
    alpha = darts.alpha.detach().clone().requires_grad_()
    reference = copy.deepcopy(net)
    exact = exact_alpha_gradient(reference, alpha, 0.5, x, y, xv, yv)
    first = first_order_gradient(copy.deepcopy(net), alpha, xv, yv)
    before = copy.deepcopy(net.state_dict(keep_vars=False))

    darts.unrolled_alpha_step(x, y, xv, yv)
    estimate = darts.alpha.grad
    # the whole gradient, and its second-order term alone (an unrolled step that did nothing would fail here)
    assert (estimate - exact).norm() <= 1e-3 * exact.norm()
    assert (exact - first).norm() >= 0.05 * exact.norm()
    assert (estimate - exact).norm() <= 1e-2 * (exact - first).norm()
    after = net.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())  # weights and BatchNorm statistics alike
    assert all(p.grad is None for p in net.parameters())
    assert not torch.equal(darts.alpha.detach(), alpha.detach())  # and Adam stepped alpha


def test_a_second_order_step_trains_alpha_and_the_weights(data):
    darts = create_method("darts", space=SPACE, data=data, order=2, batch_size=32, seed=0, alpha_lr=0.01)
    net = darts.setup()
    weights = {name: p.detach().clone() for name, p in net.named_parameters()}
    alpha = darts.alpha.detach().clone()
    darts.step(data.x_train[:32], data.y_train[:32], data.x_val[:32], data.y_val[:32])
    assert not torch.equal(darts.alpha.detach(), alpha)
    # the parameters, not the state dict: every forward pass moves BatchNorm's running statistics
    assert any(not torch.equal(p, weights[name]) for name, p in net.named_parameters())


@pytest.mark.parametrize("method, order, message", [
    ("darts", 3, "order: 3 is not allowed (allowed: 1, 2)"),
    ("darts", "2", "order: '2' is not allowed (allowed: 1, 2)"),
    ("gdas", 2, "order: gdas is first order only (allowed: 1)"),
])
def test_a_bad_order_is_refused_naming_the_allowed_values(data, method, order, message):
    with pytest.raises(NasforgeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_method(method, space=SPACE, data=data, order=order, batch_size=32)


def test_order_from_a_config_reaches_the_method(tmp_path, monkeypatch):
    from nasforge.oneshot import run as run_module
    from nasforge.runner.config import RunConfig

    made = []
    real = run_module.create_method
    monkeypatch.setattr(run_module, "create_method", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    config = RunConfig(out=str(tmp_path / "run"), space="nb201", space_options={"channels": 2, "cells_per_stage": 1},
                       strategy="darts", strategy_options={"order": 2, "batch_size": 64}, estimator="supernet",
                       estimator_options={"calibration_images": 64, "eval_images": 64}, dataset="digits", epochs=1,
                       budget=1, seed=0)
    run_module.run_oneshot(config)
    assert made[0].order == 2 and len(made[0].log) == 1
