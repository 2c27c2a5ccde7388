"""`recloss train --nproc N` (torchrun on localhost), its errors, resume across ranks, and the
pure helpers of the distributed module."""

from __future__ import annotations

import contextlib
import importlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from distributed_ranks import spawn

import recloss.cli
from recloss.cli.launch import QUIET_FLAG, without_nproc
from recloss.errors import ConfigError, RunInterrupted
from recloss.training.distributed import Replicas, gather_rows, shard_bounds

SMALL = [
    "--dataset", "synthetic", "--set", "data.synthetic.rows=2000",
    "--set", "data.synthetic.fields=4",
    "--set", "model.params.hidden_dims=[16]", "--set", "train.max_steps_per_epoch=3",
    "--set", "train.progress=false", "--epochs", "1", "--device", "cpu",
]  # fmt: skip


def _recloss(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recloss", *args], cwd=cwd, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip


def test_the_nproc_flag_is_taken_out_of_what_the_ranks_run():
    argv = ["train", "--nproc", "2", "--epochs", "1", "--nproc=3", "--seed", "1"]
    assert without_nproc(argv) == ["train", "--epochs", "1", "--seed", "1"]


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_launcher_exits_128_plus_it_and_leaves_the_hint_to_the_ranks(
    monkeypatch, capsys, signum, status
):
    import torch.distributed.run
    from torch.distributed.elastic.multiprocessing.api import SignalException

    def interrupted(args):
        raise SignalException(f"Process 1 got signal: {signum}", sigval=signum)

    monkeypatch.setattr(torch.distributed.run, "run", interrupted)
    assert recloss.cli.main(["train", "--nproc", "2", *SMALL]) == status
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("rank, says", [(0, True), (1, False)])
def test_of_the_interrupted_ranks_rank_zero_alone_says_how_to_resume(
    monkeypatch, capsys, rank, says
):
    def interrupted(args):
        raise RunInterrupted(Path("runs/r"))

    monkeypatch.setitem(recloss.cli.COMMANDS, "train", interrupted)
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert recloss.cli.main(["train", QUIET_FLAG]) == 130
    hint = "recloss: interrupted (resume with `recloss train --resume runs/r`)\n"
    assert capsys.readouterr().err == (hint if says else "")


GLOO_CLOSED = (
    "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
    "[127.0.0.1]:40080. This is typically caused by a remote worker crashing.\nmore"
)


@pytest.mark.parametrize("quiet, shown", [(True, ""), (False, "recloss: error: rank 1: ")])
def test_a_rank_whose_peer_is_gone_says_one_line_at_most(monkeypatch, capsys, quiet, shown):
    def peer_gone(args):  # rank 0 failed to prepare the data while this rank waited for it
        raise RuntimeError(GLOO_CLOSED)

    monkeypatch.setitem(recloss.cli.COMMANDS, "train", peer_gone)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert recloss.cli.main(["train", *[QUIET_FLAG] * quiet]) == 2
    err = capsys.readouterr().err
    assert err.startswith(shown) and err.count("\n") == bool(shown)
    assert not shown or "the process group failed: [/pytorch/" in err


def test_other_runtime_errors_are_not_taken_for_a_peer_gone(monkeypatch):
    def bug(args):
        raise RuntimeError("shape mismatch")

    monkeypatch.setitem(recloss.cli.COMMANDS, "train", bug)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        recloss.cli.main(["train"])


class HardExit(Exception):
    """What the test's `os._exit` raises instead of ending the test's process."""


@pytest.mark.parametrize(
    "world, status, hard", [("2", 2, True), ("2", 130, True), ("2", 0, False), ("1", 2, False)]
)
def test_a_rank_that_stops_early_skips_the_interpreters_teardown(monkeypatch, world, status, hard):
    import recloss.training.distributed

    launch = importlib.import_module("recloss.cli.launch")  # the package's `launch` is the function
    left: list[bool] = []
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setattr(recloss.training.distributed, "leave_process_group",
                        lambda: left.append(True))  # fmt: skip

    def hard_exit(code: int) -> None:
        raise HardExit(code)

    monkeypatch.setattr(launch.os, "_exit", hard_exit)
    with pytest.raises(HardExit if hard else SystemExit) as ended:
        launch.end_process(status)
    code = ended.value.args[0] if hard else ended.value.code
    assert code == status and left == [True] * hard


def test_shards_cover_every_row_once_in_order():
    for rows in (0, 1, 7, 10):
        bounds = [shard_bounds(rows, r, 3) for r in range(3)]
        covered = [i for lo, hi in bounds for i in range(lo, hi)]
        assert covered == list(range(rows))


def test_one_process_passes_everything_through():
    model, strategy = torch.nn.Linear(2, 1), torch.nn.Module()
    replicas = Replicas(model, strategy, torch.device("cpu"), seed=0)
    assert replicas.forward is model and replicas.world == 1 and replicas.backend is None
    assert replicas.local_batch(255) == 255
    rows = torch.arange(5.0)
    assert gather_rows(rows, 5) is rows
    assert replicas.epoch_totals(0.5, 10, 1.0) == (0.5, 10, 1.0)


def test_a_global_batch_the_ranks_cannot_share_evenly_is_refused():
    replicas = Replicas(torch.nn.Linear(2, 1), torch.nn.Module(), torch.device("cpu"), seed=0)
    replicas.world = 2  # its arithmetic only: no process group is needed for the refusal
    with pytest.raises(ConfigError, match="train.batch_size: 255 .* multiple of the 2"):
        replicas.local_batch(255)
    assert replicas.local_batch(256) == 128


def _gathered(rank: int) -> list[float]:
    import torch.distributed as dist

    dist.init_process_group("gloo")
    lo, hi = shard_bounds(5, rank, 2)
    return gather_rows(torch.arange(lo, hi, dtype=torch.float32) * 10, 5).tolist()


@pytest.mark.slow
def test_ranks_gather_their_blocks_in_row_order():
    assert spawn(_gathered, 2) == [[0.0, 10.0, 20.0, 30.0, 40.0]] * 2


@pytest.mark.slow
def test_nproc_trains_with_two_ranks_and_rank_zero_writes_the_run(tmp_path):
    done = _recloss(
        "train", "--nproc", "2", *SMALL, "--batch-size", "256", "--out", str(tmp_path / "runs"),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1  # one folder, named by rank 0, for both ranks
    record = json.loads((folders[0] / "metrics.json").read_text())
    assert (record["world_size"], record["backend"], record["steps"]) == (2, "gloo", 3)
    assert done.stdout.count("run directory:") == 1


@pytest.mark.slow
def test_an_error_on_the_ranks_is_one_line_and_stops_them(tmp_path):
    done = _recloss(
        "train", "--nproc", "2", *SMALL, "--batch-size", "255", "--out", str(tmp_path / "r"),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("recloss: error: rank ") and "train.batch_size: 255" in lines[0]


def _refused(rank: int, cfg: dict, root: str) -> str:
    from recloss import train

    with pytest.raises(ConfigError) as err:
        train(cfg, run_dir=f"{root}/r")
    return str(err.value)


def test_a_global_batch_that_would_take_no_step_is_refused(tmp_path):
    # one process trains the 400 rows as one ragged batch; two ranks drop it, and took no step
    cfg = {
        "data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache"),
                 "synthetic": {"rows": 500, "fields": 4}},
        "model": {"params": {"hidden_dims": [16]}},
        "loss": {"name": "ce"},
        "train": {"epochs": 1, "batch_size": 512, "progress": False, "device": "cpu"},
    }  # fmt: skip
    for message in spawn(_refused, 2, cfg, str(tmp_path)):
        assert message.startswith("train.batch_size: 512 is more than the 400 training rows")


def _interrupted_then_resumed(rank: int, cfg: dict, root: str) -> tuple[dict, dict] | None:
    from conftest import InterruptAfter

    from recloss import resume, train

    whole = train(cfg, run_dir=f"{root}/whole")
    with contextlib.suppress(KeyboardInterrupt):  # on every rank, after epoch 1's checkpoint
        train(cfg, run_dir=f"{root}/cut", callbacks=[InterruptAfter(1)])
    resumed = resume(f"{root}/cut")
    return (whole.test, resumed.test) if rank == 0 else None


@pytest.mark.slow
def test_a_run_interrupted_under_two_ranks_resumes_to_the_same_result(tmp_path):
    # AutoLoss with dropout: rank 1's noise must resume exactly too
    cfg = {
        "data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache"),
                 "synthetic": {"rows": 2000, "fields": 4}},
        "model": {"name": "deepfm", "params": {"dropout": 0.2, "hidden_dims": [16]}},
        "train": {"epochs": 2, "batch_size": 128, "max_steps_per_epoch": 4, "progress": False,
                  "device": "cpu"},
    }  # fmt: skip
    (whole, resumed), _ = spawn(_interrupted_then_resumed, 2, cfg, str(tmp_path))
    assert resumed == pytest.approx(whole, abs=1e-6)


def _stopped_by_a_signal_on_rank_one(rank: int, cfg: dict, root: str) -> tuple | bool:
    from conftest import SignalAtStep

    from recloss import resume, train
    from recloss.rundir import RunDir
    from recloss.training import checkpoint

    whole = train(cfg, run_dir=f"{root}/whole")
    try:  # rank 0 gets no signal, and must stop after the same step, the 10th (a poll)
        train(cfg, run_dir=f"{root}/cut", callbacks=[SignalAtStep(7)] if rank == 1 else [])
    except KeyboardInterrupt:
        stopped = True
    else:
        stopped = False
    step = checkpoint.load(RunDir(f"{root}/cut").checkpoint)["state"]["step"]
    resumed = resume(f"{root}/cut")  # by every rank
    return (stopped, step, whole.test, resumed.test) if rank == 0 else stopped


def test_a_signal_on_one_rank_stops_every_rank_after_the_same_steps_checkpoint(tmp_path):
    cfg = {
        "data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache"),
                 "synthetic": {"rows": 2000, "fields": 4}},
        "model": {"name": "deepfm", "params": {"dropout": 0.2, "hidden_dims": [16]}},
        "loss": {"name": "ce"},
        "train": {"epochs": 2, "batch_size": 128, "progress": False, "device": "cpu"},
    }  # fmt: skip
    zero, one = spawn(_stopped_by_a_signal_on_rank_one, 2, cfg, str(tmp_path))
    stopped, step, whole, resumed = zero
    assert stopped and one and step == 10
    assert resumed == pytest.approx(whole, abs=1e-6)


def test_batches_are_pinned_whole_for_cuda_and_left_alone_for_the_cpu(monkeypatch):
    from recloss.data.schema import Batch, Lookup
    from recloss.training.streams import pin, staged

    pinned = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: pinned.append(t) or t.clone())
    lookup = Lookup(torch.zeros(3), torch.ones(3), torch.zeros(2, 2))
    batch = Batch(torch.ones(2, 2), None, torch.zeros(2), lookup)
    out = pin(batch)
    assert isinstance(out, Batch) and isinstance(out.lookup, Lookup) and out.x_num is None
    assert len(pinned) == 5 and torch.equal(out.lookup.values, lookup.values)
    batches = [batch]
    assert staged(batches, torch.device("cpu")) is batches
