"""Bug reports: when an error that is not the user's escapes, the full traceback is saved where
the user can send it, and one ``bug:`` line names the file (exit 1).

Commands with a ``--workspace`` save into ``<workspace>/logs/``; others into the user's log folder.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import traceback
from collections.abc import Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path

from pipeline.errors import one_line
from pipeline.workspace.files import atomic_write_text
from pipeline.workspace.store import DB_NAME

BUG_EXIT = 1
LOG_DIR_ENV = "WORKBENCH_LOG_DIR"
"""Environment variable naming the folder for bug reports of commands outside a workspace."""
WORKSPACE_LOGS = "logs"
"""``<workspace>/logs/``: bug reports, beside ``categories/`` and ``jobs/``."""


def report_bug(err: BaseException, argv: Sequence[str], workspace: Path | None = None) -> int:
    """Save the traceback of ``err`` (plus command line, versions, time) and print one ``bug:``
    line naming the file; returns the exit code 1. ``workspace``: the command's ``--workspace``."""
    summary = one_line(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
    prefix = f"bug: {summary} — this is a bug in the workbench, not in your data"
    text = bug_report(err, argv)
    try:
        path = write_bug_report(text, bug_log_dir(workspace))
    except OSError as why:  # e.g. a read-only home: the traceback must not be lost, so print it all
        print(f"{prefix}; its traceback could not be saved ({why}), so here it is:\n{text}", file=sys.stderr)
        return BUG_EXIT
    print(f"{prefix}; full traceback written to {path} (please send it)", file=sys.stderr)
    return BUG_EXIT


def bug_report(err: BaseException, argv: Sequence[str]) -> str:
    """The text of a bug report: what ran, on what, when, and the full traceback."""
    lines = [
        "inspection workbench bug report",
        f"time: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"command: python -m pipeline {shlex.join(str(a) for a in argv)}",
        f"cwd: {_cwd()}",
        f"python: {platform.python_version()} ({sys.executable}) on {platform.platform()}",
        f"torch: {_version('torch')}; numpy: {_version('numpy')}",
    ]
    return "\n".join(lines) + "\n\n" + "".join(traceback.format_exception(type(err), err, err.__traceback__))


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the folder was deleted under the process: still write the report
        return "unknown (deleted)"


def _version(package: str) -> str:
    # From the installed metadata, not an import: a report must not wait for (or fail on) torch.
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def bug_log_dir(workspace: Path | None) -> Path:
    """``<workspace>/logs/`` when ``workspace`` is an existing workspace, else ``user_log_dir()``."""
    # A folder without the database is not a workspace (a typo, or a fit that failed before
    # creating it): no logs/ folder is left there.
    if workspace is not None and (Path(workspace) / DB_NAME).is_file():
        return Path(workspace) / WORKSPACE_LOGS
    return user_log_dir()


def user_log_dir() -> Path:
    """``$WORKBENCH_LOG_DIR``, else ``$XDG_CACHE_HOME/inspection-workbench/logs`` (``~/.cache`` by default)."""
    chosen = os.environ.get(LOG_DIR_ENV, "").strip()
    if chosen:
        return Path(chosen).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(cache) / "inspection-workbench" / "logs"


def write_bug_report(text: str, folder: Path) -> Path:
    """Write ``text`` atomically to ``folder/bug-<time>-<pid>.txt``; returns that path."""
    # Time and pid: two processes failing in the same second (job workers) never share a file.
    path = Path(folder).absolute() / f"bug-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    atomic_write_text(path, text)
    return path
