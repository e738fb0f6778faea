"""A built network as deployable files: TorchScript and ONNX, each checked against the eager model.

TorchScript comes from `torch.jit.trace` on a batch of 1, or from `torch.jit.script` when the trace
gives other outputs than the model on a batch of 2 (Python control flow on shapes or values). ONNX is
written from that checked TorchScript module with PyTorch's TorchScript-based exporter (`dynamo=False`:
the dynamo exporter needs onnxscript, which nasforge does not depend on), opset 17, batch axis dynamic.

>>> import torch.nn as nn
>>> paths = export_model(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), (3, 2, 2), "out")  # doctest: +SKIP
>>> sorted(paths)  # doctest: +SKIP
['onnx', 'torchscript']
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["ONNX_OPSET", "evaluating", "export_model", "onnx_session", "random_input", "to_onnx", "to_torchscript"]

# ONNX Runtime has run opset 17 since 1.14 (nasforge needs >= 1.17); the legacy exporter writes up to 20.
ONNX_OPSET = 17
# The exported files must reproduce the eager model's outputs to within float32 kernel differences.
RTOL, ATOL = 1e-3, 1e-4


def export_model(model: nn.Module, input_shape: tuple[int, ...], out_dir: str | Path, *,
                 name: str = "model") -> dict[str, Path]:
    """Write `<name>.ts` (TorchScript) and `<name>.onnx` under `out_dir`, reload both and check them on a
    seeded batch of 2 against the eager model in eval mode; returns {"torchscript": path, "onnx": path}.

    Raises NasforgeError when the model cannot be converted or a file's outputs differ from the model's
    (rtol 1e-3, atol 1e-4). The model's training flags and BN statistics are left as they were.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        raise NasforgeError(f"name: expected a plain file name without folders, e.g. 'model', got {name!r}")
    x = random_input(model, input_shape, 2, seed=2)
    with evaluating(model), torch.no_grad():
        expected = model(x)
    if not isinstance(expected, torch.Tensor):
        raise NasforgeError(f"model: export needs a forward that returns one tensor, got {type(expected).__name__}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"torchscript": out / f"{name}.ts", "onnx": out / f"{name}.onnx"}
    script = to_torchscript(model, input_shape)
    with _quiet_legacy_paths():
        script.save(str(paths["torchscript"]))
        reloaded = torch.jit.load(str(paths["torchscript"]), map_location=x.device)
    to_onnx(script, input_shape, paths["onnx"])
    with torch.no_grad():
        _check_close("TorchScript", reloaded(x), expected)
    _check_close("ONNX", onnx_session(paths["onnx"]).run(None, {"input": x.cpu().numpy()})[0], expected)
    return paths


def to_torchscript(model: nn.Module, input_shape: tuple[int, ...]) -> torch.jit.ScriptModule:
    """`model` in eval mode as TorchScript: traced on a batch of 1, scripted if the trace disagrees with the
    model on a batch of 2. Raises NasforgeError naming both failures when neither works."""
    example, probe = random_input(model, input_shape, 1, seed=0), random_input(model, input_shape, 2, seed=1)
    with evaluating(model), torch.no_grad(), _quiet_legacy_paths():
        try:
            traced = torch.jit.trace(model, example)
            if _agree(traced(probe), model(probe)):
                return traced
            trace_failure = "the trace gives other outputs than the model on a batch of 2"
        except Exception as error:  # tracing raises many types (RuntimeError, TypeError, ...): try scripting
            trace_failure = _first_line(error)
        try:
            return torch.jit.script(model)
        except Exception as error:
            raise NasforgeError(f"model: cannot be converted to TorchScript (trace: {trace_failure}; "
                                f"script: {_first_line(error)})") from error


def to_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | Path, *, batch_size: int | None = None) -> Path:
    """Write `model` (eager or TorchScript) in eval mode to `path` as ONNX: input "input", output "output",
    opset `ONNX_OPSET`, a dynamic batch axis or, with `batch_size`, a fixed one (what latency measurement
    uses: every shape is then static, as for a deployed model of one batch size). Raises NasforgeError
    when the exporter fails."""
    example = random_input(model, input_shape, batch_size or 1, seed=0)
    dynamic = None if batch_size else {"input": {0: "batch"}, "output": {0: "batch"}}
    with evaluating(model), torch.no_grad(), _quiet_legacy_paths():
        try:
            torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["input"], output_names=["output"], dynamic_axes=dynamic)
        except Exception as error:  # the exporter raises many types for unsupported operators
            raise NasforgeError(f"model: cannot be exported to ONNX ({_first_line(error)})") from error
    return Path(path)


def onnx_session(path: str | Path, *, threads: int | None = None) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session on the CPU for the file at `path`; `threads` intra-op threads (None: its default)."""
    import onnxruntime  # imported here: it takes a moment and only export and latency need it

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0 is ONNX Runtime's "choose for me"
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def random_input(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, *, seed: int = 0) -> torch.Tensor:
    """A standard-normal (batch_size, *input_shape) batch on the model's device and float dtype, drawn from
    its own generator seeded with `seed` (the global RNG is not touched)."""
    if not isinstance(input_shape, (tuple, list)) or any(isinstance(n, bool) or not isinstance(n, int) or n < 1
                                                         for n in input_shape):
        raise NasforgeError(f"input_shape: expected a tuple of positive integers without the batch axis, "
                            f"e.g. (3, 32, 32), got {input_shape!r}")
    x = torch.randn((batch_size, *input_shape), generator=torch.Generator().manual_seed(seed))
    reference = next(itertools.chain(model.parameters(), model.buffers()), None)
    if reference is None:
        return x
    return x.to(reference.device, reference.dtype if reference.is_floating_point() else None)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode (no BN statistics updates, no dropout) for the block; every module's own
    training flag comes back afterwards, so mixed train/eval states survive."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def _quiet_legacy_paths() -> Iterator[None]:
    """Silence what torch >= 2.9 says on every use of TorchScript and of the TorchScript-based ONNX exporter
    (deprecation; "no signature found" when exporting a ScriptModule): using them is our choice (see the
    module docstring). TracerWarnings, which can point at a wrong trace, still show."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "no signature found for", UserWarning)
        yield


def _agree(got: object, expected: object) -> bool:
    return (isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor) and got.shape == expected.shape
            and torch.allclose(got, expected, rtol=RTOL, atol=ATOL))


def _check_close(fmt: str, got: torch.Tensor | np.ndarray, expected: torch.Tensor) -> None:
    got = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    want = expected.detach().cpu().numpy()
    if got.shape != want.shape:
        raise NasforgeError(f"model: its {fmt} export returns shape {got.shape}, the model {want.shape}")
    if not np.allclose(got, want, rtol=RTOL, atol=ATOL):
        raise NasforgeError(f"model: its {fmt} export disagrees with the eager model (max abs difference "
                            f"{np.abs(got - want).max():.3g}; allowed rtol {RTOL:g}, atol {ATOL:g})")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
