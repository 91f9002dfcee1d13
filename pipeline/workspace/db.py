"""SQLite plumbing of the workspace: short-lived connections, transactions, JSON columns.

Every operation opens its own connection and closes it at the end: a sqlite3 connection must not
be shared across threads (two browser tabs are two Streamlit threads) or processes (jobs).
Writes run in ``BEGIN IMMEDIATE`` transactions so a writer takes the lock before reading what it
will change; with WAL, readers never block and are never blocked by the one writer.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.workspace.errors import WorkspaceError
from pipeline.workspace.files import json_default

BUSY_TIMEOUT_S = 30.0
"""How long a writer waits for another writer's lock before giving up."""


def connect(db_path: Path) -> sqlite3.Connection:
    """A new autocommit connection (transactions are explicit) with the workspace pragmas."""
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    # FULL: a committed write survives a power cut too ("nothing is lost"); the cost is one
    # fsync per commit, negligible for UI-paced writes.
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def ensure_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode (a property of the file, so this persists).

    Switching modes needs a moment of exclusive access and SQLite does not wait for it through
    the busy timeout, so a workspace being created by two processes at once retries here.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wrap(db_path: Path, exc: sqlite3.Error) -> WorkspaceError:
    return WorkspaceError(f"workspace database {db_path}: {exc}")


@contextmanager
def reading(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection for reads; single SELECTs are consistent snapshots on their own."""
    try:
        with closing(connect(db_path)) as conn:
            yield conn
    except sqlite3.Error as exc:
        raise _wrap(db_path, exc) from exc


@contextmanager
def writing(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection inside ``BEGIN IMMEDIATE``; commits on success, rolls back on any error."""
    try:
        with closing(connect(db_path)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # SQLite may already have rolled back itself (disk full, I/O error).
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise _wrap(db_path, exc) from exc


def now_iso() -> str:
    """Current time as ISO-8601 UTC with microseconds, e.g. ``2025-01-31T12:00:00.123456+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def dumps(value: Any, what: str) -> str:
    """JSON text of ``value`` for a TEXT column; ``what`` names it in the error."""
    try:
        return json.dumps(value, sort_keys=True, default=json_default)
    except (TypeError, ValueError) as exc:
        raise WorkspaceError(f"{what} cannot be stored as JSON: {exc}") from exc


def loads(text: str) -> Any:
    """Value of a JSON TEXT column."""
    return json.loads(text)


def check_name(value: str, what: str) -> str:
    """A category or method name; these become folder names, so no separators or dot-names."""
    if not isinstance(value, str) or not value.strip():
        raise WorkspaceError(f"{what} must be a non-empty string, got {value!r}")
    if any(c in value for c in "/\\\0") or value in (".", ".."):
        raise WorkspaceError(f"{what} {value!r} cannot contain '/', '\\' or be '.' or '..'")
    return value


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``allowed``, else a WorkspaceError listing them."""
    if value not in allowed:
        raise WorkspaceError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def check_number(value: Any, what: str, allow_inf: bool = False) -> float:
    """``value`` as a float; never NaN (SQLite would store it as NULL), infinite only if allowed."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise WorkspaceError(f"{what} must be a number, got {value!r}") from exc
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise WorkspaceError(f"{what} must be {'a number' if allow_inf else 'finite'}, got {number}")
    return number


__all__ = [
    "BUSY_TIMEOUT_S",
    "check_choice",
    "check_number",
    "check_name",
    "connect",
    "ensure_wal",
    "dumps",
    "loads",
    "now_iso",
    "reading",
    "writing",
]
