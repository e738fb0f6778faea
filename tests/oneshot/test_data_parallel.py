"""Data-parallel supernet training on two CPU processes (gloo): every rank ends in the same state, runs
are deterministic and resume exactly, the result comes back to the caller, the averaged gradient of two
half batches is the whole batch's where the images' losses are independent, and bad device lists are
refused in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
import torch

from nasforge.cli import main
from nasforge.data import load_dataset
from nasforge.errors import NasforgeError
from nasforge.oneshot import create_method
from nasforge.oneshot.darts import Darts
from nasforge.oneshot.spos import Spos
from nasforge.runner.search import load_config
from nasforge.spaces.nb201 import NB201Space
from test_resume import Stop, _same_state

SPACE = NB201Space(channels=4, cells_per_stage=1)
DEVICES = ["cpu", "cpu"]


@pytest.fixture(scope="module")
def data():
    d = load_dataset("digits", seed=0)
    return replace(d, x_train=d.x_train[:128], y_train=d.y_train[:128], x_val=d.x_val[:64], y_val=d.y_val[:64])


def _method(data, name="darts", cls=None, **options):
    options = dict(space=SPACE, data=data, epochs=2, batch_size=32, seed=3) | options
    return create_method(name, **options) if cls is None else cls(**options)


@pytest.fixture(scope="module")
def parallel(data, tmp_path_factory):
    """A finished two-process DARTS fit and its checkpoint."""
    checkpoint = tmp_path_factory.mktemp("parallel") / "supernet.pt"
    method = _method(data, devices=DEVICES)
    method.fit(checkpoint=checkpoint)
    return method, checkpoint


def test_the_trained_state_comes_back_and_a_second_run_repeats_it(data, parallel):
    method, checkpoint = parallel
    fresh = _method(data, devices=DEVICES)
    fresh.setup()
    assert len(method.log) == 2 and not torch.equal(method.alpha, fresh.alpha)
    assert not torch.equal(method.supernet.stem[0].weight, fresh.supernet.stem[0].weight)
    _same_state(torch.load(checkpoint, weights_only=False), method.state_dict())  # rank 0 wrote it
    again = _method(data, devices=DEVICES)
    again.fit()
    _same_state(again.state_dict(), method.state_dict())


def test_batchnorm_normalises_over_each_shard(data, parallel):
    """With BatchNorm on batch statistics the ranks' shards show: not the one-device numbers, but close."""
    single = _method(data)
    single.fit()
    assert not torch.equal(parallel[0].alpha, single.alpha)
    for a, b in zip(parallel[0].log, single.log):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=0.05)


class FrozenNormDarts(Darts):
    """DARTS with BatchNorm on its (initial) running statistics: every image's loss is independent of the
    others', so the mean of two half batches' gradients is the whole batch's."""

    def step(self, *batches):
        self.supernet.eval()
        return super().step(*batches)


def test_two_half_batches_give_the_whole_batch_update_where_images_are_independent(data):
    single, parallel = (_method(data, cls=FrozenNormDarts, epochs=1, **extra) for extra in ({}, {"devices": DEVICES}))
    single.fit()
    parallel.fit()
    # rounding apart (measured: 1e-9); alpha moves by about 1e-3 in this epoch
    torch.testing.assert_close(parallel.alpha, single.alpha, rtol=0, atol=1e-8)
    torch.testing.assert_close(parallel.supernet.state_dict(), single.supernet.state_dict(), rtol=1e-5, atol=1e-7)
    assert parallel.log[0]["train_loss"] == pytest.approx(single.log[0]["train_loss"], rel=1e-5)
    assert parallel.log[0]["train_acc"] == single.log[0]["train_acc"]


def test_a_stopped_run_resumes_as_the_uninterrupted_one(data, parallel, tmp_path):
    def stop(row):  # slow to stop: rank 0 waits for it, and writes no further checkpoint meanwhile
        time.sleep(1.0)
        raise Stop

    checkpoint = tmp_path / "supernet.pt"
    with pytest.raises(Stop):
        _method(data, devices=DEVICES).fit(checkpoint=checkpoint, on_epoch=stop)
    assert len(torch.load(checkpoint, weights_only=False)["log"]) == 1
    rows = []
    resumed = _method(data, devices=DEVICES)
    resumed.fit(checkpoint=checkpoint, on_epoch=rows.append)
    assert [r["epoch"] for r in rows] == [2]
    _same_state(resumed.state_dict(), parallel[0].state_dict())


@pytest.mark.parametrize("name", ["gdas", "spos", "enas"])
def test_every_rank_ends_identical(data, name):
    """The ranks compare a digest of their whole state at the end: GDAS' Gumbel samples, SPOS' paths and
    ENAS' controller (told the averaged reward) stay the same on both."""
    options = {"controller_batch": 2} if name == "enas" else {}
    method = _method(data, name, epochs=1, devices=DEVICES, **options)
    method.fit()
    assert len(method.log) == 1


class UnsyncedDarts(Darts):
    """A faulty method: alpha learns from each rank's own validation shard, by hand, never averaged."""

    def alpha_step(self, x_val, y_val):
        loss = self.loss(self.arch_forward(x_val, detach=False), y_val)
        (grad,) = torch.autograd.grad(loss, [self.alpha])
        with torch.no_grad():
            self.alpha -= 0.1 * grad


def test_ranks_that_drift_apart_are_refused(data):
    with pytest.raises(RuntimeError, match="ranks' states differ"):
        _method(data, cls=UnsyncedDarts, epochs=1, devices=DEVICES).fit()


class FailingSpos(Spos):
    """Fails in rank 1's first step, while rank 0 goes on to wait for it in the gradients' all-reduce."""

    def step(self, *batches):
        if self._rank == 1:
            raise NasforgeError("step: rank 1 failed")
        return super().step(*batches)


def test_a_rank_error_reaches_the_caller_as_itself_with_the_rank_traceback(data):
    with pytest.raises(NasforgeError, match="^step: rank 1 failed$") as error:
        _method(data, cls=FailingSpos, devices=DEVICES).fit()
    assert "in data-parallel rank 1" in str(error.value.__cause__) and "\n" not in str(error.value)


class TwoPartError(Exception):
    """An exception pickle writes but cannot read back: its __init__ takes two arguments."""

    def __init__(self, what, why):
        super().__init__(f"{what}: {why}")


class UnpicklableFailingSpos(Spos):
    def step(self, *batches):
        raise TwoPartError("step", "failed")


def test_a_rank_error_that_cannot_be_unpickled_reaches_the_caller_as_text(data):
    with pytest.raises(RuntimeError, match="^TwoPartError: step: failed$"):
        _method(data, cls=UnpicklableFailingSpos, devices=DEVICES).fit()


@pytest.mark.parametrize("unpicklable", [lambda: (0,) * 6, threading.Lock()], ids=["lambda", "lock"])
def test_a_method_that_cannot_be_sent_to_the_ranks_is_refused_in_one_line(data, unpicklable):
    method = _method(data, "spos", devices=DEVICES)
    method.sample_path = unpicklable  # pickle cannot send a local function (PicklingError) or a lock (TypeError)
    with pytest.raises(NasforgeError, match="^devices: .*cannot be pickled") as error:
        method.fit()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("options, field", [
    ({"devices": []}, "devices"),
    ({"devices": "cpu"}, "devices"),
    ({"devices": ["cpu", "gpu0"]}, "devices"),
    ({"devices": ["cpu", "meta"]}, "devices"),
    ({"devices": ["cpu", "cuda:0"]}, "devices"),
    ({"devices": ["cuda:0", "cuda:0"]}, "devices"),
    ({"devices": DEVICES, "device": "cpu"}, "devices"),
    ({"devices": ["cpu"] * 3}, "batch_size"),
    ({"devices": ["cpu"] * 32, "batch_size": 32}, "batch_size"),
])
def test_bad_device_lists_are_refused_in_one_line(data, options, field):
    with pytest.raises(NasforgeError) as error:
        _method(data, **options)
    assert str(error.value).startswith(f"{field}: ") and "\n" not in str(error.value)


CONFIG = """
space: nb201
space_options: {channels: 4, cells_per_stage: 1}
strategy: spos
strategy_options: {batch_size: 64, population_size: 2, sample_size: 1}
estimator: supernet
estimator_options: {calibration_images: 64, eval_images: 64}
dataset: digits
epochs: 1
budget: 2
"""


def test_the_cli_trains_on_the_devices_given(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    with pytest.raises(SystemExit) as done:
        main(["search", "--config", str(config), "--out", str(tmp_path / "run"), "--devices", "cpu,cpu"])
    assert done.value.code == 0
    stored = json.loads((tmp_path / "run" / "supernet_log.jsonl").read_text().splitlines()[0])
    assert stored["epoch"] == 1
    assert load_config(tmp_path / "run").strategy_options["devices"] == DEVICES
    with pytest.raises(SystemExit) as refused:
        main(["search", "--config", str(config), "--out", str(tmp_path / "bad"), "--devices", "cpu,tpu:x"])
    assert refused.value.code == 2 and capsys.readouterr().err.startswith("error: devices: ")
    with pytest.raises(SystemExit) as refused:  # the run's devices are in its config: a resume names the flag
        main(["search", "--resume", "--out", str(tmp_path / "run"), "--devices", "cpu,cpu"])
    assert refused.value.code == 2 and capsys.readouterr().err.startswith("error: resume: devices is fixed")
    with pytest.raises(SystemExit) as refused:  # a strategy that trains no supernet
        main(["search", "--strategy", "random", "--out", str(tmp_path / "random"), "--devices", "cpu,cpu"])
    assert refused.value.code == 2 and capsys.readouterr().err.startswith("error: devices: only the one-shot strategies (darts,")


CALLER = """
import sys
from dataclasses import replace
from nasforge.data import load_dataset
from nasforge.oneshot import create_method
from nasforge.spaces.nb201 import NB201Space
d = load_dataset("digits", seed=0)
data = replace(d, x_train=d.x_train[:128], y_train=d.y_train[:128], x_val=d.x_val[:64], y_val=d.y_val[:64])
method = create_method("spos", space=NB201Space(channels=4, cells_per_stage=1), data=data, epochs=1000, batch_size=32,
                       devices=["cpu", "cpu"])
method.fit(checkpoint=sys.argv[1])
"""


@pytest.mark.slow
def test_the_ranks_stop_writing_and_clean_up_when_their_caller_is_killed(tmp_path):
    checkpoint = tmp_path / "supernet.pt"
    tmp = tmp_path / "tmp"  # the caller's temporary directories
    tmp.mkdir()
    caller = subprocess.Popen([sys.executable, "-c", CALLER, str(checkpoint)],
                              env=dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(tmp)))
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert caller.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(caller.pid, signal.SIGKILL)
    caller.wait()
    time.sleep(0.5)  # a rank writing at the kill finishes or dies
    written = checkpoint.stat().st_mtime_ns
    time.sleep(2.0)  # the ranks, left alone, would write an epoch every fraction of a second
    assert checkpoint.stat().st_mtime_ns == written
    assert not list(tmp.glob("nasforge-parallel-*"))  # the ranks removed the directory the caller could not
