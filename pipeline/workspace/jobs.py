"""Job records: what a background job is doing, stored so any process or tab can follow it.

Only one job runs at a time per workspace (one machine, one accelerator). A job's process may
die without saying so (killed, crashed, machine rebooted): a "running" record whose process no
longer exists is stale and is marked failed before a new job may start.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.workspace.db import dumps, loads, now_iso
from pipeline.workspace.errors import WorkspaceError

JOB_STATUSES = ("running", "done", "failed", "cancelled")
"""Every job status; all but "running" are final."""

FINAL_STATUSES = ("done", "failed", "cancelled")
"""Statuses ``finish_job`` accepts."""

STALE_MESSAGE = "process ended unexpectedly"
"""Message of a running job found with its process gone."""

_COLUMNS = (
    "id, kind, category, method, status, stage, step, total, message, params, metrics, pid, "
    "started_at, updated_at"
)


@dataclass(frozen=True)
class JobRecord:
    """One background job (fit, evaluate, ...) as stored in the workspace.

    Attributes:
        id: job number, increasing; newer jobs have larger ids.
        kind: what the job does, e.g. ``"fit"`` or ``"evaluate"``.
        category: category the job works on.
        method: method the job works with.
        status: one of ``JOB_STATUSES``.
        stage: current stage name, free text ("" before the first update).
        step: progress within the stage.
        total: number of steps in the stage (0 when unknown).
        message: last message (the error for a failed job).
        params: the job's parameters as given to ``start_job``.
        metrics: live metrics (losses, ETA, ...), merged by each ``update_job``.
        pid: process id of the job's process, ``None`` when none was recorded.
        started_at: ISO-8601 UTC time the job was started.
        updated_at: ISO-8601 UTC time of the last change.
    """

    id: int
    kind: str
    category: str
    method: str
    status: str
    stage: str
    step: int
    total: int
    message: str
    params: dict
    metrics: dict
    pid: int | None
    started_at: str
    updated_at: str


def _row_to_job(row: tuple) -> JobRecord:
    values = list(row)
    values[9], values[10] = loads(values[9]), loads(values[10])
    return JobRecord(*values)


def _linux_zombie(pid: int) -> bool:
    # An exited child its parent has not reaped still answers kill(pid, 0); its state is 'Z'.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] == "Z"


def _windows_alive(pid: int) -> bool:
    # os.kill on Windows would terminate the process, so ask for its exit code instead.
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return kernel32.GetLastError() == 5  # access denied: it exists
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine and has not exited."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return _windows_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return not _linux_zombie(pid)


def select_job(conn: sqlite3.Connection, job_id: int) -> JobRecord:
    """The job with this id; WorkspaceError when there is none."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise WorkspaceError(f"no job {job_id} in this workspace")
    return _row_to_job(row)


def select_jobs(conn: sqlite3.Connection, limit: int, status: str | None = None) -> list[JobRecord]:
    """Jobs newest first, optionally only those with ``status``."""
    where, args = ("WHERE status = ?", (status,)) if status else ("", ())
    sql = f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY id DESC LIMIT ?"
    return [_row_to_job(row) for row in conn.execute(sql, (*args, int(limit)))]


def mark_stale(conn: sqlite3.Connection) -> list[int]:
    """Mark running jobs whose recorded process is gone as failed; returns their ids.

    A running job without a pid is left alone: nothing proves it dead, and ``finish_job``
    (the UI's cancel) clears it.
    """
    stale = [
        job.id for job in select_jobs(conn, -1, "running")
        if job.pid is not None and not pid_alive(job.pid)
    ]
    for job_id in stale:
        conn.execute(
            "UPDATE jobs SET status = 'failed', message = ?, updated_at = ? WHERE id = ?",
            (STALE_MESSAGE, now_iso(), job_id),
        )
    return stale


def _refuse_running(conn: sqlite3.Connection) -> None:
    running = select_jobs(conn, 1, "running")
    if running:
        job = running[0]
        owner = f"pid {job.pid}" if job.pid is not None else "no process recorded"
        raise WorkspaceError(
            f"job {job.id} ({job.kind} {job.method} on {job.category}) is still running "
            f"({owner}); wait for it to finish or cancel it"
        )


def insert_job(
    conn: sqlite3.Connection, kind: str, category: str, method: str, params: dict, pid: int | None
) -> int:
    """Insert a running job; WorkspaceError when another job is running. Call after mark_stale."""
    _refuse_running(conn)
    now = now_iso()
    cursor = conn.execute(
        "INSERT INTO jobs (kind, category, method, status, params, metrics, pid, started_at, updated_at)"
        " VALUES (?, ?, ?, 'running', ?, '{}', ?, ?, ?)",
        (str(kind), str(category), str(method), dumps(dict(params), "job params"),
         None if pid is None else int(pid), now, now),
    )
    return int(cursor.lastrowid)


def change_job(conn: sqlite3.Connection, job_id: int, changes: dict[str, Any], metrics: dict | None) -> None:
    """Set the given columns (fixed names from the store) and merge ``metrics`` into the job's."""
    current = select_job(conn, job_id)
    values = dict(changes)
    if metrics:
        values["metrics"] = dumps({**current.metrics, **metrics}, "job metrics")
    values["updated_at"] = now_iso()
    assignments = ", ".join(f"{column} = ?" for column in values)
    conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))


__all__ = [
    "FINAL_STATUSES",
    "JOB_STATUSES",
    "STALE_MESSAGE",
    "JobRecord",
    "change_job",
    "insert_job",
    "mark_stale",
    "pid_alive",
    "select_job",
    "select_jobs",
]
