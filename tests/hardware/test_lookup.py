"""Latency lookup tables: units keyed by configuration, prediction = scale x sum + overhead and its calibration,
JSON round trip, refusal of a table measured for another backend or space, the learned predictor, and the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch.nn as nn

from nasforge.errors import NasforgeError
from nasforge.hardware.lookup import LatencyPredictor, LatencyTable, build_table, load_table, model_units
from nasforge.spaces import create_space

SHAPE = (3, 8, 8)


@pytest.fixture(scope="module")
def small():
    space = create_space("nb201", channels=4, cells_per_stage=1)
    archs = [space.sample(np.random.default_rng(s)) for s in range(4)]
    table = build_table(space, archs[:3], input_shape=SHAPE, num_classes=10, backend="onnxruntime",
                        calibration=archs[:2], warmup=2, repeats=5, clock="cpu")
    return space, archs, table


def test_units_are_the_edge_ops_and_fixed_parts_keyed_by_configuration_and_shape():
    space = create_space("nb201", channels=4, cells_per_stage=2)
    arch = space.validate("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    units = model_units(space.build(arch, SHAPE, 10), SHAPE)
    # stem, 2 x 6 edges, reduction, 2 x 6, reduction, 2 x 6, BN-ReLU, pooling, classifier
    assert len(units) == 1 + 12 + 1 + 12 + 1 + 12 + 3
    convs = [key for key, module, shape in units if key.startswith("ReLUConvBN")]
    # the 12 convolutions of a stage share one key (same configuration, same input); the three stages differ
    assert len(convs) == 36 and len(set(convs)) == 3
    assert {shape for key, _, shape in units if key.startswith("ReLUConvBN")} == {(4, 8, 8), (8, 4, 4), (16, 2, 2)}


def test_live_units_leave_out_constant_and_dead_code():
    space = create_space("nb201", channels=4, cells_per_stage=1)
    # node 1 feeds nothing (its out-edges are none): the conv into it is dead code in every cell
    dead_edge = space.build(space.validate("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|"),
                            SHAPE, 10)
    everything, live = model_units(dead_edge, SHAPE), model_units(dead_edge, SHAPE, live_only=True)
    assert len(everything) - len(live) == 3  # one per cell
    # every cell outputs zeros: nothing after it depends on the input, a graph compiler folds the whole network
    zero = space.build(space.validate("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"), SHAPE, 10)
    assert model_units(zero, SHAPE, live_only=True) == [] and len(model_units(zero, SHAPE)) > 0
    assert all(p.requires_grad and p.grad is None for p in zero.parameters())  # the model is left as it was


def test_live_units_count_a_repeated_computation_once_as_the_onnx_export_does(tmp_path):
    import onnx

    from nasforge.export import to_onnx

    space = create_space("nb201", channels=4, cells_per_stage=1)
    # per cell: two pools out of node 0 (edges 1<-0, 3<-0) compute the same; the two convs out of node 1 do not
    # (each has its own weights)
    model = space.build(space.validate("|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|avg_pool_3x3~0|"
                                       "nor_conv_3x3~1|nor_conv_3x3~2|"), SHAPE, 10)
    everything, live = model_units(model, SHAPE), model_units(model, SHAPE, live_only=True)
    pools = [sum(key.startswith("AvgPool3x3") for key, _, _ in units) for units in (everything, live)]
    convs = [sum(key.startswith("ReLUConvBN") for key, _, _ in units) for units in (everything, live)]
    assert pools == [6, 3] and convs == [12, 12]
    # the exported graph computes as many pools (depthwise convolutions) as the live units count
    graph = onnx.load(to_onnx(model, SHAPE, tmp_path / "m.onnx", batch_size=1)).graph
    depthwise = [n for n in graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert len(depthwise) == pools[1]


def test_mobilenet_units_are_its_blocks():
    space = create_space("mobilenet")
    arch = space.sample(np.random.default_rng(0))
    blocks = sum(len(stage) for stage in arch.value["stages"])
    units = model_units(space.build(arch, (3, 32, 32), 10), (3, 32, 32))
    # stem, fixed first MBConv, the searched blocks, final conv, pool, flatten, linear, hardswish, linear
    assert len(units) == 2 + blocks + 6
    assert sum(key.startswith("MBConv") for key, _, _ in units) == 1 + blocks


def test_prediction_is_the_sum_of_entries_plus_overhead(small):
    space, archs, table = small
    model = space.build(archs[0], SHAPE, 10)
    expected = table.overhead_ms + table.scale * sum(table.units[key] for key, _, _ in table.units_of(model))
    assert table.predict(model) == pytest.approx(expected, rel=1e-12) and table.scale >= 0
    assert all(np.isfinite(list(table.units.values()))) and min(table.units.values()) >= 0


def test_a_network_onnx_runtime_folds_to_a_constant_costs_one_call(small):
    space, archs, table = small
    # every cell outputs zeros: the whole network is a constant, one call that returns it
    zero = space.build(space.validate("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"), SHAPE, 10)
    assert table.constant_ms > 0 and table.predict(zero) == table.constant_ms
    models = [space.build(a, SHAPE, 10) for a in archs]
    predictor = LatencyPredictor(table).fit(models, [table.predict(m) for m in models])
    assert predictor.predict(zero) == table.constant_ms


def test_a_missing_unit_is_refused_by_name_or_measured(small):
    space, archs, table = small
    other = create_space("nb201", channels=6, cells_per_stage=1).build(archs[0], SHAPE, 10)  # other channel counts
    with pytest.raises(NasforgeError, match="no entry for unit"):
        table.predict(other)
    copy = LatencyTable(**{**table.__dict__, "units": dict(table.units), "_empty_ms": {}})
    predicted = copy.predict(other, measure_missing=True)
    assert len(copy.units) > len(table.units) and all(v >= 0 for v in copy.units.values())
    # the overhead may be negative (units timed alone can cost more than inside a network), so the check
    # is the sum with the newly measured units in it, not the sign of a tiny network's prediction
    assert predicted == pytest.approx(copy.overhead_ms + copy.scale * sum(copy.units[k] for k, _, _ in copy.units_of(other)),
                                      rel=1e-12)


def _sums(table, models):
    return np.array([sum(table.units[k] for k, _, _ in table.units_of(m)) for m in models])


def _constructed(table, models):
    """A copy of `table` whose entries for `models`' units are made up (0.1, 0.15, 0.2, ... ms, distinct): the
    fits below are checked on exactly known numbers, not on timings of tiny units that are mostly noise."""
    keys = sorted({k for m in models for k, _, _ in table.units_of(m)})
    return dataclasses.replace(table, units={k: 0.1 + 0.05 * i for i, k in enumerate(keys)}, scale=1.0)


def test_calibration_recovers_a_scale_and_an_overhead(small):
    space, archs, table = small
    models = [space.build(a, SHAPE, 10) for a in archs]
    table = _constructed(table, models)
    sums = _sums(table, models)
    assert len(set(sums)) == 4
    # a runtime where units cost 1.7x their time alone and a network 0.25 ms once
    assert table.calibrate(models[:3], list(1.7 * sums[:3] + 0.25)) == pytest.approx((1.7, 0.25), rel=1e-9)
    assert table.predict(models[3]) == pytest.approx(1.7 * sums[3] + 0.25, rel=1e-9)  # a network it was not fit on
    # latency that falls as the units grow is noise, not a negative cost: the scale stops at 0
    scale, overhead = table.calibrate(models, list(50.0 - sums))
    assert scale == 0 and min(50.0 - sums) <= overhead <= max(50.0 - sums)


def test_calibration_weighs_relative_errors(small):
    space, archs, table = small
    models = [space.build(a, SHAPE, 10) for a in archs]
    table = _constructed(table, models)
    sums = _sums(table, models)
    measured = 2.0 * sums + 0.1
    measured[np.argmax(sums)] *= 1.3  # no line fits them all: where the error goes is the fit's choice
    table.calibrate(models, list(measured))
    relative = np.abs([table.predict(m) for m in models] - measured) / measured
    # the target is relative (within +-10 %), so is the fit: its squared relative errors are the least, clearly
    # less than those of an ordinary least-squares line (which favours the slowest network)
    ordinary = np.abs(np.polyval(np.polyfit(sums, measured, 1), sums) - measured) / measured
    assert (relative ** 2).sum() < 0.9 * (ordinary ** 2).sum()


def test_calibration_on_one_kind_of_network_fits_the_overhead_only(small):
    space, archs, table = small
    table = dataclasses.replace(table, units=dict(table.units))
    model = space.build(archs[0], SHAPE, 10)
    total = _sums(table, [model])[0]
    assert table.calibrate([model, model], [total + 0.2, total + 0.4]) == pytest.approx((1.0, 0.3))
    with pytest.raises(NasforgeError, match="^latencies_ms: expected one per network"):
        table.calibrate([model], [1.0, 2.0])
    with pytest.raises(NasforgeError, match="^calibration: needs at least one network"):
        table.calibrate([])


def test_json_round_trip_and_refusals(small, tmp_path):
    space, archs, table = small
    path = table.save(tmp_path / "lut.json")
    data = json.loads(path.read_text())
    assert (data["space"], data["backend"], data["threads"], data["batch_size"]) == ("nb201", "onnxruntime", 1, 1)
    assert data["input_shape"] == list(SHAPE) and data["device"] and data["clock"] == "cpu"
    loaded = load_table(path, space="nb201", backend="onnxruntime")
    model = space.build(archs[1], SHAPE, 10)
    assert loaded.units == table.units and loaded.predict(model) == table.predict(model)
    assert data["format"] == 2 and (loaded.scale, loaded.overhead_ms, loaded.constant_ms) == (
        table.scale, table.overhead_ms, table.constant_ms)
    # format 1 had no scale: it reads as scale 1 (sum plus overhead, what it meant); a newer format is refused
    (tmp_path / "v1.json").write_text(json.dumps({**{k: v for k, v in data.items() if k != "scale"}, "format": 1}))
    old = load_table(tmp_path / "v1.json")
    assert old.scale == 1.0 and old.predict(model) == pytest.approx(
        old.overhead_ms + sum(old.units[k] for k, _, _ in old.units_of(model)), rel=1e-12)
    (tmp_path / "v3.json").write_text(json.dumps({**data, "format": 3}))
    with pytest.raises(NasforgeError, match=r"not a nasforge latency table \(format 1 or 2\)"):
        load_table(tmp_path / "v3.json")
    with pytest.raises(NasforgeError, match="measured for backend 'onnxruntime', not 'eager'"):
        load_table(path, backend="eager")
    with pytest.raises(NasforgeError, match="measured for space 'nb201', not 'darts'"):
        load_table(path, space="darts")
    assert load_table(path, space="darts", allow_mismatch=True).space == "nb201"
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(NasforgeError, match="not a nasforge latency table"):
        load_table(tmp_path / "bad.json")


def test_the_learned_predictor_recovers_a_linear_latency(small):
    space, archs, table = small
    models = [space.build(a, SHAPE, 10) for a in archs]
    # a runtime that runs each unit class at its own speed: the predictor's features make this exactly linear
    truth = [0.3 + 2.0 * sum(table.units[k] for k, m, _ in table.units_of(model) if isinstance(m, nn.Sequential))
             for model in models]
    predictor = LatencyPredictor(table, alpha=0.0).fit(models[:3] * 2, truth[:3] * 2)
    assert predictor.predict(models[0]) == pytest.approx(truth[0], rel=1e-6)


def test_the_learned_predictors_penalty_is_chosen_by_cross_validation(small):
    space, _, table = small
    models = [space.build(space.sample(np.random.default_rng(s)), SHAPE, 10) for s in range(12)]
    table = _constructed(table, models)
    # exactly linear in the features: leave-one-out picks the smallest penalty and predicts a network it was not
    # fit on almost exactly (0.07 % off), where a fixed alpha=1 shrinks the fit (0.7 % off; alpha=10: 5 %)
    truth = [0.3 + 2.0 * sum(table.units[k] for k, m, _ in table.units_of(model) if isinstance(m, nn.Sequential))
             for model in models]
    chosen = LatencyPredictor(table).fit(models[:-1], truth[:-1])
    fixed = LatencyPredictor(table, alpha=1.0).fit(models[:-1], truth[:-1])
    assert chosen.predict(models[-1]) == pytest.approx(truth[-1], rel=0.003)
    assert fixed.predict(models[-1]) != pytest.approx(truth[-1], rel=0.005)
    with pytest.raises(NasforgeError, match="^alpha: must be >= 0 or None"):
        LatencyPredictor(table, alpha=-1.0)


def test_the_latency_table_command_writes_a_tagged_table(tmp_path, capsys):
    from nasforge.cli import main

    def run(*args):
        with pytest.raises(SystemExit) as exit_info:
            main(["latency-table", "--space", "nb201", "--input-shape", "3,8,8", "--num-classes", "10", *args])
        return exit_info.value.code

    assert run("--backend", "eager", "--samples", "2", "--calibration", "1", "--clock", "cpu",
               "--out", str(tmp_path / "lut.json")) == 0
    table = load_table(tmp_path / "lut.json", space="nb201", backend="eager", space_options={})
    assert (table.threads, table.batch_size, table.clock, table.input_shape) == (1, 1, "cpu", (3, 8, 8))
    assert table.units and "units" in capsys.readouterr().out
    assert run("--backend", "tensorrt", "--out", str(tmp_path / "x.json")) == 2
    assert "backend: expected one of" in capsys.readouterr().err
