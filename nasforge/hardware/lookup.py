"""Latency lookup tables (FBNet, Wu et al., 2019; Once-for-All, Cai et al., 2020): each distinct unit of a
network is timed once on this device, and a network's latency is predicted from the sum of its units,
calibrated on a few networks measured whole.

A *unit* is found on the built network itself, so every space (and every block type added to one) works
without a per-space list: starting from the root, modules that route data — `ModuleList` / `ModuleDict`
containers, modules holding one (cells, NB201 / DARTS networks) and the root — are opened; every other
module reached is a unit (a MobileNet block, an NB201 / DARTS edge op, a stem, a classifier). A unit is
keyed by its class, the per-sample shape of its input and a digest of its `repr` (which lists every
layer's configuration: channels, kernel, stride, expansion, SE, activation), so two blocks with the
same configuration at the same resolution share one entry, and a block at another position of the
network with the same key costs the same.

Each unit is timed alone on the table's backend, minus the time of an empty call (`nn.Identity`) on an
input of the same shape: what remains is its compute, not the per-call cost of the runtime. A network's
prediction is `scale` times the sum of its units plus `overhead_ms`, both fitted by least squares on a few
calibration networks measured whole (`LatencyTable.calibrate`): the overhead is what a network costs once
(the runtime's call, the input and output copies), the scale what grows with the network and units timed
alone miss or overcount (additions and Python dispatch between units; the per-call cost left after the empty
call's; caches, which a unit timed alone has to itself). ONNX Runtime folds constants,
drops dead code and computes a repeated computation once, so its tables count only the units whose output
depends on the input and reaches the output, each distinct computation once; a network left with none
is a constant for it and costs one call (`constant_ms`, measured on calibration).

Where the sum is poor — tiny units whose runtime fuses or prunes them inside a whole graph, as ONNX Runtime
does with NB201's 16-channel cells — `LatencyPredictor` learns the whole network's latency from measured
networks instead, from per-unit-class sums of the table's entries.

Tables are JSON (format 2: format 1 had no `scale` and `constant_ms`, and reads as scale 1, constant 0), tagged with the space, its options,
the backend, device, threads, batch size and input they were measured for; `load_table` refuses one measured
for another space or backend unless told.

>>> from nasforge.spaces import create_space
>>> space = create_space("nb201", channels=4, cells_per_stage=1)
>>> archs = [space.sample(np.random.default_rng(s)) for s in range(2)]
>>> table = build_table(space, archs, input_shape=(3, 8, 8), num_classes=10, calibration=archs, repeats=3)
>>> table.predict(space.build(archs[0], (3, 8, 8), 10)) > 0
True
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.hardware.latency import BACKENDS, LatencyStats, measure_latency
from nasforge.spaces.base import Arch, SearchSpace

__all__ = ["LatencyPredictor", "LatencyTable", "build_table", "device_name", "load_table", "model_units"]

FORMAT = 2
#: the formats `load_table` reads: format 1 is format 2 without `scale` (which then is 1)
READABLE = (1, 2)


def device_name(backend: str = "onnxruntime") -> str:
    """What a table was measured on: the CPU's model name (or the GPU's, for the CUDA backends)."""
    if backend.endswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        if found:
            return found.group(1).strip()
    return platform.processor() or platform.machine()


def _opens(module: nn.Module, root: bool) -> bool:
    """Whether `module` is opened (its children searched for units) rather than timed as one unit."""
    if root or isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return True
    return any(isinstance(child, (nn.ModuleList, nn.ModuleDict)) for child in module.children())


def _unit_modules(module: nn.Module, root: bool = True) -> Iterable[nn.Module]:
    if not _opens(module, root):
        yield module
        return
    for child in module.children():
        yield from _unit_modules(child, root=False)


def _key(module: nn.Module, shape: tuple[int, ...]) -> str:
    digest = hashlib.sha1(repr(module).encode()).hexdigest()[:16]
    return f"{type(module).__name__}:{'x'.join(map(str, shape))}:{digest}"


#: side (pixels) of the small input on which liveness is found: it is a property of the wiring, not the size
LIVENESS_SIDE = 16


def model_units(model: nn.Module, input_shape: tuple[int, ...], *,
                live_only: bool = False) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(key, module, per-sample input shape) of every unit call in one forward pass of a (1, *input_shape)
    input, in call order; a unit called twice appears twice.

    `live_only` leaves out the calls a graph compiler removes: those whose output does not depend on the
    network's input (constant-folded, e.g. NB201's `none` edges) or does not reach its output (dead code,
    e.g. an edge into a node that nothing reads), found by asking autograd which outputs the network's
    output depends on (no gradient is stored on the model), and repeats of a live call: the same unit
    configuration with equal weights on the same tensor (computed once after common-subexpression
    elimination, e.g. two NB201 `avg_pool_3x3` edges out of one node). Liveness is found on an input of at
    most `LIVENESS_SIDE` pixels a side (cheap), or on the real one if the small one calls other units.
    """
    calls, _, _, _ = _trace(model, input_shape, grad=False)
    if not live_only:
        return calls
    small = (input_shape[0], *(min(n, LIVENESS_SIDE) for n in input_shape[1:]))
    probe, inputs, outputs, out = _trace(model, small, grad=True)
    if [m for _, m, _ in probe] != [m for _, m, _ in calls]:  # shape-dependent wiring: probe the real input
        probe, inputs, outputs, out = _trace(model, input_shape, grad=True)
    varying = [i for i, o in enumerate(outputs) if isinstance(o, torch.Tensor) and o.requires_grad]
    grads = torch.autograd.grad(out.sum(), [outputs[i] for i in varying], allow_unused=True) \
        if varying and out.requires_grad else [None] * len(varying)  # a constant output: nothing is live
    kept: list[int] = []
    for i in sorted(i for i, g in zip(varying, grads) if g is not None):
        if not any(_same_computation(calls[i], calls[j], inputs[i], inputs[j]) for j in kept):
            kept.append(i)
    return [calls[i] for i in kept]


def _same_computation(call: tuple[str, nn.Module, tuple[int, ...]], other: tuple[str, nn.Module, tuple[int, ...]],
                      x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether two unit calls compute the same: one configuration (key), equal weights, the same input tensor."""
    if call[0] != other[0] or x is not y:
        return False
    mine, theirs = [*call[1].parameters(), *call[1].buffers()], [*other[1].parameters(), *other[1].buffers()]
    return len(mine) == len(theirs) and all(torch.equal(a, b) for a, b in zip(mine, theirs))


def _trace(model: nn.Module, input_shape: tuple[int, ...], *, grad: bool,
           ) -> tuple[list[tuple[str, nn.Module, tuple[int, ...]]], list[torch.Tensor], list[Any], torch.Tensor]:
    """One eval-mode forward pass of zeros: the unit calls, each unit's input and output, and the network's
    output. With `grad`, outputs carry autograd's record of their dependence on the input (weights are
    constants for it: their `requires_grad` is off during the pass and restored after)."""
    calls: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    inputs: list[torch.Tensor] = []  # held, so that two calls on one tensor are told by identity
    outputs: list[Any] = []

    def record(module: nn.Module, args: tuple[Any, ...]) -> None:
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if len(tensors) != 1 or len(args) != 1:
            raise NasforgeError(f"lookup table: unit {type(module).__name__} takes {len(args)} inputs; "
                                "units must take one tensor")
        shape = tuple(tensors[0].shape[1:])
        calls.append((_key(module, shape), module, shape))
        inputs.append(tensors[0])

    units = list(_unit_modules(model))
    handles = [m.register_forward_pre_hook(record) for m in units]
    handles += [m.register_forward_hook(lambda module, args, output: outputs.append(output)) for m in units]
    modes = [(m, m.training) for m in model.modules()]
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        model.eval()
        for p in trainable:
            p.requires_grad_(False)
        with torch.set_grad_enabled(grad):
            out = model(torch.zeros(1, *input_shape, requires_grad=grad))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
        for p in trainable:
            p.requires_grad_(True)
    return calls, inputs, outputs, out


@dataclass
class LatencyTable:
    """Unit key -> milliseconds timed alone (compute only), the calibration (`scale`, `overhead_ms`) that turns
    their sum into a network's latency, and what they were measured on."""

    space: str
    backend: str
    device: str
    threads: int
    batch_size: int
    input_shape: tuple[int, ...]
    num_classes: int
    overhead_ms: float = 0.0
    scale: float = 1.0
    #: a call of a network with no unit to count: one ONNX Runtime folds whole to a constant (set by `calibrate`)
    constant_ms: float = 0.0
    units: dict[str, float] = field(default_factory=dict)
    space_options: dict[str, Any] = field(default_factory=dict)
    warmup: int = 10
    repeats: int = 30
    clock: str = "wall"
    _empty_ms: dict[tuple[int, ...], float] = field(default_factory=dict, repr=False, compare=False)

    def predict(self, model: nn.Module, *, measure_missing: bool = False) -> float:
        """Predicted milliseconds of `model` (batch `batch_size`, `input_shape`): the overhead plus its units' entries.

        A unit not in the table raises, naming it, unless `measure_missing`: then it is timed now (on this
        machine, with the table's settings) and added to the table. A network with no unit to count (its
        output is a constant for this runtime) costs `constant_ms`: the call that returns it.
        """
        units = self.units_of(model)
        if not units:
            return self.constant_ms
        total = self.overhead_ms
        for key, module, shape in units:
            if key not in self.units and not measure_missing:
                raise NasforgeError(f"lookup table: no entry for unit '{key}' ({type(module).__name__}); "
                                    "build the table from more architectures or measure missing units")
            total += self.entry(key, module, shape)
        return total

    def entry(self, key: str, module: nn.Module, shape: tuple[int, ...]) -> float:
        """The milliseconds unit `key` (`module` on inputs of `shape`) adds to a network: `scale` times its
        time alone, timed now and added when missing."""
        if key not in self.units:
            self.units[key] = self._measure(module, shape)
        return self.scale * self.units[key]

    def units_of(self, model: nn.Module) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
        """The unit calls of `model` this table counts: with ONNX Runtime, which folds constants and drops
        dead code, only the live ones (`model_units(live_only=True)`)."""
        return model_units(model, self.input_shape, live_only=self.backend.startswith("onnxruntime"))

    def add(self, model: nn.Module) -> int:
        """Time every unit of `model` not in the table yet; returns how many were added."""
        added = 0
        for key, module, shape in self.units_of(model):
            added += key not in self.units
            self.entry(key, module, shape)
        return added

    def measure(self, model: nn.Module, *, reference: nn.Module | None = None) -> LatencyStats:
        """A whole network timed with the table's settings (in alternation with `reference`, if given: see
        `measure_latency`)."""
        return measure_latency(model, self.input_shape, batch_size=self.batch_size, threads=self.threads,
                               backend=self.backend, warmup=self.warmup, repeats=self.repeats,
                               clock=self.clock, reference=reference)

    def calibrate(self, models: Sequence[nn.Module], latencies_ms: Sequence[float] | None = None) -> tuple[float, float]:
        """Fit `scale` and `overhead_ms` so that predictions match `models`' measured latencies (`latencies_ms`,
        or measured now with the table's settings); returns them. Units missing from the table are timed.

        measured ~ scale * (sum of the units timed alone) + overhead, by least squares on relative errors
        (the target is a relative one: within +-10 %), scale >= 0. Networks whose sums are all equal (one
        network, say) cannot tell a scale from an overhead: the scale is then 1 and the overhead their median
        residual. `constant_ms` is measured too, on a network that returns a constant.
        """
        from scipy.optimize import lsq_linear

        if not models:
            raise NasforgeError("calibration: needs at least one network")
        if latencies_ms is not None and len(latencies_ms) != len(models):
            raise NasforgeError(f"latencies_ms: expected one per network ({len(models)}), got {len(latencies_ms)}")
        for model in models:
            self.add(model)
        sums = np.array([sum(self.units[key] for key, _, _ in self.units_of(model)) for model in models])
        measured = np.array([self.measure(model).median_ms for model in models] if latencies_ms is None else latencies_ms, float)
        if np.ptp(sums) > 0:
            fit = lsq_linear(np.stack([sums, np.ones_like(sums)], 1) / measured[:, None], np.ones_like(sums),
                             bounds=([0.0, -np.inf], [np.inf, np.inf]), method="bvls")
            self.scale, self.overhead_ms = map(float, fit.x)
        else:
            self.scale, self.overhead_ms = 1.0, float(np.median(measured - sums))
        self.constant_ms = self.measure(_Constant(self.num_classes)).median_ms
        return self.scale, self.overhead_ms

    def _measure(self, module: nn.Module, shape: tuple[int, ...]) -> float:
        settings = dict(batch_size=self.batch_size, threads=self.threads, backend=self.backend,
                        warmup=self.warmup, repeats=self.repeats, clock=self.clock)
        if shape not in self._empty_ms:  # the runtime's per-call cost at this shape, measured once per table
            self._empty_ms[shape] = measure_latency(nn.Identity(), shape, **settings).median_ms
        # compute cannot take negative time: a unit timed below the empty call is noise
        return max(0.0, measure_latency(copy.deepcopy(module), shape, **settings).median_ms - self._empty_ms[shape])

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON; returns the path."""
        path = Path(path)
        fields = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        path.write_text(json.dumps({"format": FORMAT, **fields}, indent=1) + "\n")
        return path


class _Constant(nn.Module):
    """A network whose output (zero logits) does not depend on its input: what a graph runtime folds it to."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], self.num_classes)


def build_table(space: SearchSpace, archs: Sequence[Arch], *, input_shape: tuple[int, ...], num_classes: int,
                backend: str = "onnxruntime", threads: int = 1, batch_size: int = 1,
                calibration: Sequence[Arch] = (), warmup: int = 10, repeats: int = 30, clock: str = "wall",
                space_options: dict[str, Any] | None = None) -> LatencyTable:
    """A table of every distinct unit of `archs`' networks, calibrated (scale and overhead) on `calibration`'s.

    `clock` is `measure_latency`'s (`"cpu"` needs threads=1). Networks are built inside a forked torch RNG
    (the global RNG is left as it was); weights do not change latency.
    """
    if backend not in BACKENDS:
        raise NasforgeError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    table = LatencyTable(space=space.name, backend=backend, device=device_name(backend), threads=threads,
                         batch_size=batch_size, input_shape=tuple(input_shape), num_classes=num_classes,
                         space_options=dict(space_options or {}), warmup=warmup, repeats=repeats, clock=clock)
    with torch.random.fork_rng(devices=[]):
        for arch in archs:
            table.add(space.build(arch, tuple(input_shape), num_classes))
        if calibration:
            table.calibrate([space.build(arch, tuple(input_shape), num_classes) for arch in calibration])
    return table


def load_table(path: str | Path, *, space: str | None = None, backend: str | None = None,
               space_options: dict[str, Any] | None = None, allow_mismatch: bool = False) -> LatencyTable:
    """The table at `path`; one measured for another `space`, `space_options` or `backend` than given is
    refused (its entries would be another network's or runtime's) unless `allow_mismatch`."""
    path = Path(path)
    if not path.is_file():
        raise NasforgeError(f"latency_table: no such file '{path}'")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise NasforgeError(f"latency_table: {path} is not JSON") from None
    if not isinstance(data, dict) or data.pop("format", None) not in READABLE:
        raise NasforgeError(f"latency_table: {path} is not a nasforge latency table (format "
                            f"{' or '.join(map(str, READABLE))})")
    try:
        table = LatencyTable(**{**data, "input_shape": tuple(data["input_shape"])})
    except (TypeError, KeyError) as error:
        raise NasforgeError(f"latency_table: {path} is malformed ({error})") from None
    wanted = {"space": space, "backend": backend, "space_options": space_options}
    for name, value in wanted.items():
        if value is not None and getattr(table, name) != value and not allow_mismatch:
            raise NasforgeError(f"latency_table: {path} was measured for {name} {getattr(table, name)!r}, not "
                                f"{value!r} (measure a table for it, or allow the mismatch)")
    return table


class LatencyPredictor:
    """A learned latency model (option for spaces where the table's sum is poor): ridge regression
    (scikit-learn, on standardised features) of measured whole-network milliseconds on, for each unit class,
    the number of units and the sum of their table entries. Linear in the table's entries, so it stays close
    to the table where the table is right, and learns how much of each kind of unit the runtime hides inside
    a whole graph. Its penalty `alpha` is chosen by leave-one-out cross-validation (`RidgeCV`) unless given:
    with two features per unit class and the few tens of networks one measures, a fixed one overfits."""

    #: the penalties leave-one-out chooses among when `alpha` is None
    ALPHAS = tuple(np.logspace(-3, 3, 13))

    def __init__(self, table: LatencyTable, *, alpha: float | None = None) -> None:
        if alpha is not None and not alpha >= 0:
            raise NasforgeError(f"alpha: must be >= 0 or None (chosen by cross-validation), got {alpha!r}")
        self.table, self.alpha = table, alpha
        self.classes: list[str] = []
        self._model: Any = None

    def fit(self, models: Sequence[nn.Module], latencies_ms: Sequence[float]) -> "LatencyPredictor":
        """Fit on networks and their measured latencies (the table's settings); units missing from the table are timed."""
        from sklearn.linear_model import Ridge, RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if len(models) != len(latencies_ms) or len(models) < 2:
            raise NasforgeError(f"fit: needs two or more networks and one latency each, got {len(models)} and {len(latencies_ms)}")
        units = [self._units(model) for model in models]
        self.classes = sorted({cls for found in units for cls in found})
        features = np.array([self._features(u) for u in units])
        ridge = RidgeCV(alphas=self.ALPHAS) if self.alpha is None else Ridge(alpha=self.alpha)
        self._model = make_pipeline(StandardScaler(), ridge).fit(features, np.asarray(latencies_ms))
        return self

    def predict(self, model: nn.Module) -> float:
        """Predicted milliseconds of `model`."""
        if self._model is None:
            raise NasforgeError("predictor: fit it on measured networks first")
        found = self._units(model)
        if not found:  # a constant for this runtime, as the table predicts it
            return self.table.constant_ms
        return float(self._model.predict(np.array([self._features(found)]))[0])

    def _units(self, model: nn.Module) -> dict[str, tuple[int, float]]:
        """Unit class -> (count, sum of table entries) of `model`."""
        found: dict[str, tuple[int, float]] = {}
        for key, module, shape in self.table.units_of(model):
            count, total = found.get(type(module).__name__, (0, 0.0))
            found[type(module).__name__] = (count + 1, total + self.table.entry(key, module, shape))
        return found

    def _features(self, found: dict[str, tuple[int, float]]) -> list[float]:
        return [x for cls in self.classes for x in found.get(cls, (0, 0.0))]
