"""`recloss train --nproc N`: torchrun on this machine, and each rank's errors as one line.

The launcher runs `torchrun --standalone --nproc-per-node N -m recloss train ...` in-process
(`torch.distributed.run`), on a free port. A rank that fails on a user error writes its one-line
message to the error file torchrun gives it; when any rank fails, torchrun stops the others and
the launcher reports the first failure's line, and nothing else.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import NoReturn

from recloss.errors import ConfigError, RecLossError

QUIET_FLAG = "--errors-to-launcher"  # given to the ranks: their errors go to the launcher only


def without_nproc(argv: list[str]) -> list[str]:
    """The command line minus `--nproc N` (or `--nproc=N`)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def launch(nproc: int, argv: list[str]) -> int:
    """`recloss ARGV` as `nproc` ranks here; RecLossError with the failed rank's line. Returns
    the exit status: 0, or 128 + the signal after Ctrl-C or SIGTERM (rank 0 has said how to
    resume)."""
    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}: give at least 1 process")
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "-m", "recloss", *argv, QUIET_FLAG]
    )
    _silence_torchrun()
    # the ranks share this machine's cores (torchrun would give each 1 thread, with a warning)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    try:
        run(args)
    except ChildFailedError as err:
        raise RecLossError(_first_message(err)) from None
    except SignalException as stop:  # the ranks got the signal too, and have stopped
        return 128 + stop.sigval
    return 0


def _silence_torchrun() -> None:
    """No log lines from torchrun's agent: each of its modules' loggers has a level of its own."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _first_message(err) -> str:
    """The earliest failure that left a message; else the first rank's exit code or signal."""
    failures = sorted(err.failures.items(), key=lambda item: item[1].timestamp)
    for _, failure in failures:
        if isinstance(failure.message, str) and failure.message.startswith("rank "):
            return failure.message
    rank, failure = err.get_first_failure()
    how = f"signal {-failure.exitcode}" if failure.exitcode < 0 else f"code {failure.exitcode}"
    return f"rank {rank}: stopped with {how} (its output is above)"


def end_process(status: int) -> NoReturn:
    """Exit with `status`. A rank that stops early (an error, an interrupt) leaves its process
    group and exits at once, without the interpreter's teardown: with a peer already gone, that
    teardown now and then aborts in gloo's threads ("terminate called without an active
    exception"), which would be the rank's last line on screen."""
    if status != 0 and _rank_and_world()[1] > 1:
        from recloss.training.distributed import leave_process_group

        leave_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def _rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of ranks, as torchrun set them (0 and 1 alone)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def report_rank_interrupt(line: str, quiet: bool) -> None:
    """An interrupt's line; among `quiet` ranks rank 0's alone (the signal reaches them all)."""
    rank, _ = _rank_and_world()
    if not (quiet and rank > 0):
        print(line, file=sys.stderr)


def report_rank_error(message: str, quiet: bool) -> None:
    """A rank's one-line error: to torchrun's error file, and on screen unless `quiet` (the
    launcher prints the first rank's)."""
    rank, world = _rank_and_world()
    line = f"rank {rank}: {message}" if world > 1 else message
    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")  # torchrun's file for this rank
    if error_file and world > 1:
        with open(error_file, "w") as f:
            json.dump({"message": line, "timestamp": str(int(time.time()))}, f)
    if not (quiet and world > 1):
        print(f"recloss: error: {line}", file=sys.stderr)
