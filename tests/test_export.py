"""Export: TorchScript and ONNX files reload and reproduce the eager model, also on other batch sizes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.export import ONNX_OPSET, export_model

SHAPE = (3, 8, 8)
# the tests reload with torch.jit.load, deprecated since torch 2.9 and still the way to read a .ts file
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


def _conv_bn_net() -> nn.Sequential:
    """A conv / BN / linear net whose BN statistics are far from their initial 0 / 1, so eval mode matters."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.Conv2d(8, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.Flatten(), nn.Linear(8 * 3 * 3, 5))
        with torch.no_grad():
            model.train()(3 * torch.randn(16, *SHAPE) + 1)
    return model


def _batch(n: int, seed: int) -> torch.Tensor:
    return torch.randn((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


def _reloaded_outputs(paths: dict, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    torchscript = torch.jit.load(str(paths["torchscript"]))(x).detach().numpy()
    session = onnxruntime.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    return torchscript, session.run(None, {"input": x.numpy()})[0]


def test_conv_bn_net_exports_and_reloads_with_a_dynamic_batch(tmp_path):
    model = _conv_bn_net()  # left in train mode: export must use eval mode and leave it so
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    paths = export_model(model, SHAPE, tmp_path / "export", name="net")
    assert paths == {"torchscript": tmp_path / "export" / "net.ts", "onnx": tmp_path / "export" / "net.onnx"}
    assert all(p.is_file() for p in paths.values())
    assert model.training and all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)

    x = _batch(5, seed=7)  # exported from a batch of 1, checked on 2: 5 is new
    with torch.no_grad():
        expected = model.eval()(x).numpy()
        in_train_mode = model.train()(x).numpy()
    assert not np.allclose(in_train_mode, expected, atol=1e-2)  # so matching below proves eval-mode export
    for got in _reloaded_outputs(paths, x):
        assert got.shape == (5, 5)
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)

    graph = onnx.load(str(paths["onnx"]))
    assert graph.opset_import[0].version == ONNX_OPSET
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("space, arch", [
    ("nb201", "|avg_pool_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"),
    ("darts", None),
])
def test_cell_spaces_with_average_pooling_export_with_a_dynamic_batch(tmp_path, space, arch):
    from nasforge.spaces import create_space

    space = create_space(space)
    if arch is None:  # a DARTS genotype whose cells pool, reducing ones with stride 2
        rng = np.random.default_rng(0)
        arch = next(a for a in (space.sample(rng) for _ in range(200)) if "avg_pool_3x3" in a.key)
    else:
        arch = space.validate(arch)
    model = space.build(arch, SHAPE, 4)
    paths = export_model(model, SHAPE, tmp_path / "export")
    x = _batch(3, seed=1)
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    for got in _reloaded_outputs(paths, x):
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_python_control_flow_on_the_batch_size_is_scripted_not_traced(tmp_path):
    class BatchDependent(nn.Module):
        """A trace on a batch of 1 would keep only the `else` branch."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] > 1:
                return x.flatten(1).sum(1, keepdim=True)
            return x.flatten(1).amax(1, keepdim=True)

    model = BatchDependent()
    paths = export_model(model, SHAPE, tmp_path)
    for n in (1, 3):
        x = _batch(n, seed=n)
        for got in _reloaded_outputs(paths, x):
            np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-3, atol=1e-4)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_model_neither_traceable_nor_scriptable_gets_a_clear_error(tmp_path):
    class ThroughNumpy(nn.Module):
        """NumPy is invisible to the tracer (the result becomes a constant) and unknown to the scripter."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(np.tanh(x.numpy()))

    message = r"^model: cannot be converted to TorchScript \(trace: .*; script: "
    with pytest.raises(NasforgeError, match=message) as error:
        export_model(ThroughNumpy(), SHAPE, tmp_path)
    assert "\n" not in str(error.value)


def test_an_onnx_file_that_disagrees_with_the_model_is_refused(tmp_path):
    # a wrong custom symbolic (ReLU written as Neg) is a real way for an ONNX file to go wrong
    torch.onnx.register_custom_op_symbolic("aten::relu", lambda g, x: g.op("Neg", x), ONNX_OPSET)
    try:
        with pytest.raises(NasforgeError, match="^model: its ONNX export disagrees with the eager model"):
            export_model(_conv_bn_net(), SHAPE, tmp_path)
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::relu", ONNX_OPSET)


def test_bad_input_is_refused(tmp_path):
    class TwoOutputs(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x, x

    with pytest.raises(NasforgeError, match="^model: export needs a forward that returns one tensor, got tuple"):
        export_model(TwoOutputs(), SHAPE, tmp_path)
    with pytest.raises(NasforgeError, match="^name: "):
        export_model(_conv_bn_net(), SHAPE, tmp_path, name="../model")
    with pytest.raises(NasforgeError, match="^input_shape: "):
        export_model(_conv_bn_net(), (3, 0, 8), tmp_path)
