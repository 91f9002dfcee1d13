"""The CLI's error model: a user's mistake is one ``error:`` line (exit 2); anything else is a bug.

A project exception a user can cause through input, data or machine (a bad option, a missing
folder, weights not downloaded) subclasses ``UserError``, and its message says what is wrong
and how to fix it. Internal checks (array shapes, programming errors) stay built-in exceptions
such as ``ValueError``: when one escapes, the workbench is at fault, so
``pipeline.bug_reports.report_bug`` saves the full traceback to a file and prints one ``bug:``
line naming it (exit 1).

Stdlib only at import time: every project module may import this one without a cycle.
"""

from __future__ import annotations

import sys

USER_ERROR_EXIT = 2


class UserError(Exception):
    """A problem with the user's input, data or machine; the one-line message says how to fix it."""


class SettingsError(UserError, ValueError):
    """A value given by the user that is not valid: an option, a ``--set part.field=value``, a
    method, profile, backbone or format name. Also a ``ValueError``, which the pages catch."""


class NotReadyError(UserError, ValueError):
    """The command needs an earlier step first (fit, evaluate, pseudo-labels, images marked bad).
    Also a ``ValueError``, which the pages catch."""


class MissingFileError(UserError, FileNotFoundError):
    """A file the command needs is not there: a path given on the command line, or the model of a
    method not fitted yet. Also a ``FileNotFoundError``, which the pages catch."""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) made one space, so scripts can grep it."""
    return " ".join(text.split())


def report_user_error(err: BaseException) -> int:
    """Print ``error: <message>`` on one line; returns the exit code 2."""
    print("error: " + one_line(str(err)), file=sys.stderr)
    return USER_ERROR_EXIT


__all__ = [
    "USER_ERROR_EXIT",
    "MissingFileError",
    "NotReadyError",
    "SettingsError",
    "UserError",
    "one_line",
    "report_user_error",
]
