"""``main``: parse the command line, run the command's handler, turn errors into exit codes.

A user error is one ``error:`` line and exit 2; anything else is a bug: one ``bug:`` line naming
a saved traceback, exit 1 (``pipeline.bug_reports``); Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.bug_reports import report_bug
from pipeline.cli import calibration, data, deploy, doctor, fit, jobs, lgst, pseudolabels, report, segmentation
from pipeline.errors import UserError, report_user_error

EXPECTED_ERRORS = (UserError, PermissionError)
"""Errors the user can fix: one ``error:`` line, exit 2. Every project error (``DataError``,
``WorkspaceError``, ``MissingWeightsError``, ``DeviceError``, ...) is a ``UserError``; a
``PermissionError`` is the machine's (an ``--out`` folder not writable). Anything else is a bug."""

COMMAND_GROUPS = (fit, data, pseudolabels, segmentation, lgst, jobs, report, deploy, calibration, doctor)
"""Modules whose ``register`` adds their commands, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command but the hidden ``job-worker``."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="Inspection workbench: visual anomaly detection from good parts.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The parsed command line; ``job-worker`` has its own parser so it stays out of --help."""
    if argv[:1] == ["job-worker"]:
        return jobs.worker_parser().parse_args(argv[1:])
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one command (``argv`` default: ``sys.argv[1:]``); returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        return args.handler(args)
    except EXPECTED_ERRORS as err:
        return report_user_error(err)  # one line, so scripts can grep it
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the one bug handler: anything else is the workbench's fault; keep its traceback
        return report_bug(err, argv, getattr(args, "workspace", None))
