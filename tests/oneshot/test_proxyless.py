"""ProxylessNAS on a tiny MobileNet supernet and real digits: only the sampled path runs, alpha's latency
gradient points to cheaper options and a heavier latency weight derives a faster network, E[LAT] from a
real lookup table, exact resume."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from test_resume import check_exact_resume

from nasforge.data import load_dataset
from nasforge.errors import NasforgeError
from nasforge.hardware import count_flops
from nasforge.hardware.lookup import build_table
from nasforge.oneshot import create_method, list_methods
from nasforge.spaces.mobilenet import MobileNetSpace
from nasforge.spaces.nb201 import NB201Space

SPACE = MobileNetSpace(stem=8, widths=(8, 16), strides=(1, 2), depths=(1, 2), kernels=(3, 5), expansions=(2, 3),
                       se=(False, True), acts=("relu",), width_mults=(0.5, 1.0), final=16, head=16)


def mflops(module, shape) -> float:
    """A latency stand-in for the direction tests: MFLOPs of the unit (monotone in cost, deterministic)."""
    return count_flops(module, shape) / 1e6


@pytest.fixture(scope="module")
def data():
    d = load_dataset("digits", seed=0)
    return replace(d, x_train=d.x_train[:128], y_train=d.y_train[:128], x_val=d.x_val[:64], y_val=d.y_val[:64])


def _method(data, **options):
    return create_method("proxyless", **{**dict(space=SPACE, data=data, epochs=2, batch_size=32, seed=0, threads=1), **options})


def test_proxyless_is_registered_and_refuses_bad_input_by_name(data):
    assert "proxyless" in list_methods()
    for options, field in [(dict(space=NB201Space(channels=4, cells_per_stage=1)), "space"),
                           (dict(latency_weight=1.0), "latency"), (dict(latency_weight=-1.0, latency=mflops), "latency_weight"),
                           (dict(defence="auxskip"), "defence"), (dict(latency=3), "latency")]:
        with pytest.raises(NasforgeError, match=f"^{field}:"):
            _method(data, **options)


def test_only_the_sampled_path_runs_in_both_steps(data):
    method = _method(data, latency=mflops, latency_weight=0.1)
    net = method.setup()
    called = []
    candidates = {id(m) for chain in net.chains for stage in chain.blocks for position in stage for m in position}
    hooks = [m.register_forward_hook(lambda m, i, o: called.append(id(m))) for m in net.modules() if id(m) in candidates]
    x, y = data.x_train[:32], data.y_train[:32]
    for detach in (False, True):  # the alpha step's gated forward, the weight step's plain one
        state = method.generator.get_state()
        path = method.sample()
        method.generator.set_state(state)
        called.clear()
        method.arch_forward(x, detach=detach).sum().backward()
        expected = [id(m) for m in net.network(path) if id(m) in candidates]
        assert called == expected and len(called) == sum(SPACE.depths[path[net.depth_index(s)]] for s in range(2))
    called.clear()
    method.step(x, y, data.x_val[:32], data.y_val[:32])
    assert len(called) <= 2 * 2 * max(SPACE.depths)  # two forwards of at most one block per position
    for hook in hooks:
        hook.remove()


def test_the_latency_gradient_lowers_alpha_of_costlier_options(data):
    method = _method(data, latency=mflops, latency_weight=1.0)
    net = method.setup()
    (grad,) = torch.autograd.grad(method.expected_latency(), [method.alpha])
    k = net.field_indices(1, 0)[0]  # kernel 3 vs 5 of the first block of stage 1: 5 costs more
    assert grad[k, 1] > 0 > grad[k, 0]
    assert grad[0, 1] > 0 > grad[0, 0]  # width 1.0 costs more than 0.5
    d = net.depth_index(0)
    assert grad[d, 1] > 0 > grad[d, 0]  # two blocks cost more than one


def test_a_heavier_latency_weight_derives_a_faster_network(data):
    derived = {}
    for weight in (0.0, 10.0):
        method = _method(data, latency=mflops, latency_weight=weight, alpha_lr=0.05, epochs=2)
        log = method.fit()
        derived[weight] = log[-1]["derived_latency_ms"]
    cheapest = SPACE.decode([0] * len(SPACE.choices))  # width 0.5, depth 1, k 3, e 2, no SE
    method.setup()
    one_hot = torch.nn.functional.one_hot(torch.tensor(method.supernet.path(cheapest)), 2).double()
    assert derived[10.0] == pytest.approx(method.expected_latency(one_hot).item())  # strong weight: the cheapest network
    assert derived[10.0] < derived[0.0]


def test_expected_latency_of_a_one_hot_choice_is_the_tables_prediction(data):
    space = MobileNetSpace(stem=8, widths=(8,), strides=(1,), depths=(1, 2), kernels=(3, 5), expansions=(2,),
                           se=(False,), acts=("relu",), width_mults=(1.0,), final=16, head=16)
    arch = space.decode([0, 1, 0, 0, 0, 0, 0, 0, 0, 0])  # two kernel-3 blocks (one table entry: same unit)
    table = build_table(space, [arch], input_shape=data.input_shape, num_classes=10, backend="eager", warmup=1, repeats=3)
    assert len(table.units) == 2 + 1 + 6
    table.overhead_ms = 0.05
    method = _method(data, space=space, latency=table, latency_weight=1.0)
    net = method.setup()  # the supernet's other candidates are timed and added to the table
    one_hot = torch.nn.functional.one_hot(torch.tensor(net.path(arch)), 2).double()
    assert method.expected_latency(one_hot).item() == pytest.approx(table.predict(space.build(arch, data.input_shape, 10)))
    assert len(table.units) == 2 + 2 + 6  # the kernel-5 candidate was timed too


def test_an_interrupted_fit_continues_from_its_checkpoint_as_if_never_stopped(tmp_path, data):
    options = dict(latency=mflops, latency_weight=0.5, epochs=3)
    whole, resumed = check_exact_resume(lambda: _method(data, **options), tmp_path / "ckpt.pt", epochs=3)
    assert resumed.candidates() == whole.candidates()
