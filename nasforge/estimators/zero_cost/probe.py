"""The one forward/backward pass the data-dependent proxies share.

A `Probe` runs the network once, in training mode, on a labelled mini-batch and keeps what the proxies
named in `needs` read: the weights of the conv / linear layers and the gradient of the cross-entropy
loss with respect to them (snip, grad_norm), that gradient times the Hessian (grasp), the layer
outputs times their gradients (fisher), the Jacobian of the summed logits with respect to the inputs
(jacob_cov) and the kernel of the activations' binary codes (NASWOT). Everything is taken from that
one forward: the Jacobian and the loss gradient are two backward passes through the same graph, and
the Hessian-gradient product a third through the graph of the second.

The probe works on a copy, so the caller's network keeps its weights, gradients and BN statistics.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Collection

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ACTIVATIONS", "NEEDS", "WEIGHTED", "Probe", "replace_modules", "weighted_layers"]

#: the layers whose weights the saliency proxies score (the "prunable" layers of the pruning literature)
WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
#: activations whose inputs' signs make NASWOT's binary codes (on / off region of the piecewise-linear unit)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish, nn.SiLU, nn.GELU, nn.Mish)
#: what a probe can record
NEEDS = frozenset({"grads", "hessian", "fisher", "jacobian", "codes"})


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """The conv and linear layers of `model`, in module order."""
    return [m for m in model.modules() if isinstance(m, WEIGHTED)]


def replace_modules(model: nn.Module, kind: type, make: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """`model` with every submodule of type `kind` replaced, in place, by `make(submodule)`."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, kind):
                setattr(module, name, make(child))
    return model


class _HardSigmoid(nn.Module):
    """relu6(x + 3) / 6: `nn.Hardsigmoid` in ops with a second derivative."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3) / 6


@dataclass
class Probe:
    """What one pass over (x, y) recorded; fields not in `needs` stay empty.

    `weights`, `grads`, `hessian_grads`: per weighted layer, its weight, dL/dW and H (dL/dW) (zeros for
    a layer the loss does not reach). `fisher`: per layer, the per-channel 0.5 * mean over the batch of
    (sum over positions of activation x its gradient)^2. `jacobian`: (batch, input size) d(sum of
    logits)/d(input). `code_kernel`: (batch, batch) number of activation units on which two inputs'
    binary codes agree. `errors`: why a field asked for is
    missing (the network has an op without a second derivative, so no `hessian_grads`).
    """

    weights: list[torch.Tensor] = field(default_factory=list)
    grads: list[torch.Tensor] = field(default_factory=list)
    hessian_grads: list[torch.Tensor] | None = None
    fisher: list[torch.Tensor] = field(default_factory=list)
    jacobian: torch.Tensor | None = None
    code_kernel: torch.Tensor | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def run(cls, model: nn.Module, x: torch.Tensor, y: torch.Tensor, needs: Collection[str]) -> "Probe":
        """Pass (x, y) through a training-mode copy of `model`, recording `needs` (a subset of `NEEDS`)."""
        needs = frozenset(needs)
        if needs - NEEDS:
            raise ValueError(f"needs: unknown {sorted(needs - NEEDS)} (allowed: {', '.join(sorted(NEEDS))})")
        # nn.Hardsigmoid (squeeze-and-excitation gates) has no double backward: the same function in ops that do
        model = replace_modules(copy.deepcopy(model), nn.Hardsigmoid, lambda _: _HardSigmoid()).train()
        params = [layer.weight for layer in weighted_layers(model)]
        probe = cls(weights=[p.detach() for p in params])
        outputs: list[torch.Tensor] = []
        handles = []
        if "fisher" in needs:
            handles += [layer.register_forward_hook(lambda _m, _i, out: outputs.append(out))
                        for layer in weighted_layers(model)]
        if "codes" in needs:
            handles += [m.register_forward_hook(probe._code) for m in model.modules() if isinstance(m, ACTIVATIONS)]
        x = x.detach().clone().requires_grad_("jacobian" in needs)
        try:
            logits = model(x)
        finally:
            for handle in handles:
                handle.remove()
        if "jacobian" in needs:
            (jacobian,) = _grad(logits.sum(), [x], retain_graph=bool(needs - {"jacobian", "codes"}))
            probe.jacobian = jacobian.flatten(1)
        if needs & {"grads", "hessian", "fisher"}:
            probe._loss_gradients(F.cross_entropy(logits, y), params, outputs, hessian="hessian" in needs)
        return probe

    def _loss_gradients(self, loss: torch.Tensor, params: list[torch.Tensor], outputs: list[torch.Tensor], *,
                        hessian: bool) -> None:
        """dL/dW, fisher's per-channel sums and, with `hessian`, H dL/dW (as the gradient of
        g . stop_gradient(g) through the graph of g); an op without a double backward leaves
        `hessian_grads` None and says why in `errors`."""
        try:
            grads = _grad(loss, [*params, *outputs], create_graph=hessian)
        except RuntimeError as error:  # no double backward for some op: the graph is retained, take plain gradients
            if not hessian:
                raise
            self.errors["hessian"], hessian = str(error), False
            grads = _grad(loss, [*params, *outputs])
        weight_grads = grads[: len(params)]
        self.grads = [g.detach() for g in weight_grads]
        self.fisher = [_fisher(out.detach(), grad.detach()) for out, grad in zip(outputs, grads[len(params):])]
        if hessian:
            z = sum(((g * g.detach()).sum() for g in weight_grads if g.requires_grad), torch.zeros(()))
            try:
                self.hessian_grads = _grad(z, params) if z.requires_grad else [torch.zeros_like(p) for p in params]
            except RuntimeError as error:
                self.errors["hessian"] = str(error)

    def _code(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        """Add one activation layer's binary codes (+1 on, -1 off per unit) to the agreement count."""
        signs = (inputs[0].detach().flatten(1) > 0).float() * 2 - 1
        agreement = (signs @ signs.T + signs.shape[1]) / 2  # units on which two inputs agree
        self.code_kernel = agreement if self.code_kernel is None else self.code_kernel + agreement


def _grad(output: torch.Tensor, inputs: list[torch.Tensor], *, retain_graph: bool = False,
          create_graph: bool = False) -> list[torch.Tensor]:
    """d output / d each input, zeros for inputs the output does not depend on; with `create_graph`,
    differentiable again (not detached)."""
    grads = torch.autograd.grad(output, inputs, retain_graph=retain_graph or create_graph,
                                create_graph=create_graph, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads)]
    return grads if create_graph else [g.detach() for g in grads]


def _fisher(output: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Per channel of a layer output: 0.5 * mean over the batch of (sum over positions of output x gradient)^2."""
    product = output * grad
    per_channel = product.flatten(2).sum(2) if product.dim() > 2 else product
    return 0.5 * per_channel.pow(2).mean(0)
