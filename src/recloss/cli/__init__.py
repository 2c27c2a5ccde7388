"""The `recloss` command line: parses arguments and calls the library.

`parser` declares the commands and flags, `runs` holds train / eval / predict, `tools` the data,
list, bench and report commands.
"""

from __future__ import annotations

import os
import signal
import sys

from recloss.cli.launch import (
    launch,
    report_rank_error,
    report_rank_interrupt,
    without_nproc,
)
from recloss.cli.parser import TRAIN_FLAGS, build_parser
from recloss.cli.runs import cmd_eval, cmd_predict, cmd_train, config_from_args, print_record
from recloss.cli.tools import cmd_bench, cmd_data, cmd_list, cmd_report
from recloss.errors import RecLossError

GLOO_TRANSPORT = "gloo/transport/"  # in the source path that starts a gloo transport error

COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "predict": cmd_predict,
    "data": cmd_data,
    "list": cmd_list,
    "bench": cmd_bench,
    "report": cmd_report,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    quiet = getattr(args, "errors_to_launcher", False)
    try:
        if args.command == "train" and args.nproc is not None:
            return launch(args.nproc, without_nproc(argv))  # torchrun runs the ranks
        COMMANDS[args.command](args)
    except BrokenPipeError:  # stdout's reader stopped early (`| head`): quietly, as `cat` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush too
        return 141  # 128 + SIGPIPE, what a shell reports for a writer the pipe stopped
    except (RecLossError, OSError) as err:  # OSError: a path the user gave (unreadable, no space)
        report_rank_error(str(err), quiet)
        return 2
    except RuntimeError as err:
        if not _collective_failed(err):
            raise
        report_rank_error(f"the process group failed: {str(err).splitlines()[0]}", quiet)
        return 2
    except KeyboardInterrupt as interrupt:
        report_rank_interrupt(f"recloss: interrupted{_resume_hint(args.command, interrupt)}", quiet)
        return 128 + getattr(interrupt, "signum", signal.SIGINT)  # as the shell reports a signal
    return 0


def _resume_hint(command: str, interrupt: KeyboardInterrupt) -> str:
    """How to continue: a run has a folder once its data is ready (none before: start again)."""
    if command == "bench":
        return " (rerun the same command to continue)"
    run_dir = getattr(interrupt, "run_dir", None)
    return f" (resume with `recloss train --resume {run_dir}`)" if run_dir is not None else ""


def _collective_failed(err: RuntimeError) -> bool:
    """A torch.distributed failure, most often because another rank has stopped: c10d's own
    errors, and gloo's transport errors ("Connection closed by peer" in a barrier while rank 0
    fails to prepare the data), which reach Python as plain RuntimeErrors."""
    from torch.distributed import DistError  # loaded by then: torch raised it

    return isinstance(err, DistError) or GLOO_TRANSPORT in str(err).split("\n", 1)[0]


__all__ = ["TRAIN_FLAGS", "build_parser", "config_from_args", "main", "print_record"]
