"""Start, follow, cancel and resume background fit jobs (SPEC §7).

A job is a record in the workspace plus a detached worker process
(``python -m pipeline job-worker --workspace W --job N``) in its own session, so closing the
browser tab, stopping Streamlit or closing the terminal that started it never stops it. The
worker's stdout/stderr go to ``<workspace>/jobs/<id>/worker.log``. Everything a page or script
needs is in the record (``Workspace.job``); these functions only add the process side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pipeline
from pipeline.errors import SettingsError
from pipeline.jobs.tracker import CANCEL_KEY
from pipeline.workspace import JobRecord, Workspace, WorkspaceError, pid_alive
from pipeline.workspace.db import now_iso, reading
from pipeline.workspace.jobs import select_jobs

FIT_KIND = "fit"
"""``JobRecord.kind`` of fit jobs."""
PROFILES = ("quick", "paper")
LOG_NAME = "worker.log"
CANCEL_GRACE_S = 15.0
"""How long ``cancel_job`` waits for the worker to stop at a progress call before terminating it."""
KILL_WAIT_S = 5.0
"""How long a terminated worker gets before it is killed."""
CANCELLED_MESSAGE = "cancelled by the user"
IMPORTS_ENV = "PIPELINE_JOB_IMPORTS"
"""Comma-separated ``module`` or ``module:function`` entries the worker imports (and calls) before
fitting: a way to register extra methods; the tests register slow ones."""
_POLL_S = 0.1

_children: dict[int, subprocess.Popen] = {}
"""Workers this process started, kept so they can be reaped (no zombies in a long-lived UI)."""


@dataclass(frozen=True)
class FitParams:
    """The parameters of a fit job, as stored in ``JobRecord.params`` (plus ``resumed_from``)."""

    profile: str = "quick"
    device: str = "auto"
    seed: int = 0
    backbone: str = "auto"
    settings_changes: dict = field(default_factory=dict)
    """Training settings changed from the profile (``{"lgst": {"steps": 3000}}``), as JSON."""

    @classmethod
    def from_dict(cls, params: dict) -> "FitParams":
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in params.items() if k in fields})


# --- folders -------------------------------------------------------------------------------

def job_dir(workspace: Workspace, job_id: int) -> Path:
    """``<workspace>/jobs/<id>/``, created on demand: the job's log lives there."""
    folder = workspace.path / "jobs" / str(int(job_id))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def job_log(workspace: Workspace, job_id: int, max_lines: int = 40) -> str:
    """The last ``max_lines`` lines of the job's worker log ("" when it wrote nothing yet)."""
    path = workspace.path / "jobs" / str(int(job_id)) / LOG_NAME
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-max_lines:])


# --- starting ------------------------------------------------------------------------------

def launch_fit_job(
    workspace: Workspace, category: str, method: str, profile: str = "quick", device: str = "auto",
    seed: int = 0, backbone: str = "auto", settings_changes: dict | None = None,
) -> int:
    """Register a fit job and start its detached worker; returns the job id.

    Refused with WorkspaceError (naming the running job) while another job of the workspace runs,
    and with a clear error for an unknown category, method, profile or training setting
    (``settings_changes``, see ``pipeline.methods.training_settings``), before any process starts.
    """
    params = FitParams(profile, device, int(seed), backbone, dict(settings_changes or {}))
    return _launch(workspace, category, method, asdict(params))


def resume_job(workspace: Workspace, job_id: int) -> int:
    """Start a failed or cancelled fit job again with the same parameters; returns the new id.

    Training resumes from the checkpoints the first run wrote. A job still shown running whose
    process died is first marked failed, so a crashed job can be resumed at once.
    """
    job = current_job(workspace, job_id)
    if job.kind != FIT_KIND:
        raise WorkspaceError(f"job {job_id} is a {job.kind} job; only fit jobs can be resumed")
    if job.status not in ("failed", "cancelled"):
        why = "cancel it first" if job.status == "running" else "start a new job to fit again"
        raise WorkspaceError(f"job {job_id} is {job.status}; only a failed or cancelled job can be resumed ({why})")
    params = {**asdict(FitParams.from_dict(job.params)), "resumed_from": int(job_id)}
    return _launch(workspace, job.category, job.method, params)


def _launch(workspace: Workspace, category: str, method: str, params: dict) -> int:
    from pipeline.data.registered import load_workspace_category
    from pipeline.methods import get_method
    from pipeline.methods.training_settings import check_training_settings

    _reap()
    spec = get_method(method)
    params["settings_changes"] = check_training_settings(method, spec.trains, params.get("settings_changes") or {})
    load_workspace_category(workspace, category)  # unknown category or moved data: refused before any process
    if params["profile"] not in PROFILES:
        raise SettingsError(f"profile must be one of {', '.join(PROFILES)}; got {params['profile']!r}")
    job_id = workspace.start_job(FIT_KIND, category, method, params)
    try:
        pid = _spawn(workspace, job_id)
    except OSError as exc:
        workspace.finish_job(job_id, "failed", f"could not start the worker process: {exc}")
        raise WorkspaceError(f"could not start the worker process of job {job_id}: {exc}") from exc
    workspace.update_job(job_id, pid=pid)  # the worker records it too; whichever comes first
    return job_id


def worker_command(workspace: Workspace, job_id: int) -> list[str]:
    """The command line of a job's worker process."""
    return [sys.executable, "-m", "pipeline", "job-worker", "--workspace", str(workspace.path), "--job", str(job_id)]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # log lines reach the file as they are printed
    root = str(Path(pipeline.__file__).resolve().parent.parent)  # importable from any cwd
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _detached() -> dict:
    # Own session / process group: no terminal hang-up or Ctrl-C of the parent reaches the worker.
    if os.name == "nt":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS  # type: ignore[attr-defined]
        return {"creationflags": flags}
    return {"start_new_session": True}


def _spawn(workspace: Workspace, job_id: int) -> int:
    log = job_dir(workspace, job_id) / LOG_NAME
    with open(log, "ab") as handle:
        proc = subprocess.Popen(
            worker_command(workspace, job_id), stdin=subprocess.DEVNULL, stdout=handle,
            stderr=subprocess.STDOUT, env=_worker_env(), close_fds=True, **_detached(),
        )
    _children[proc.pid] = proc
    return proc.pid


def _reap() -> None:
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]


# --- following -----------------------------------------------------------------------------

def current_job(workspace: Workspace, job_id: int) -> JobRecord:
    """The job's record, marked failed first when it says running but its process is gone."""
    _reap()
    job = workspace.job(job_id)
    if job.status == "running" and job.pid is not None and not pid_alive(job.pid):
        workspace.mark_stale_jobs()
        job = workspace.job(job_id)
    return job


def running_job(workspace: Workspace) -> JobRecord | None:
    """The workspace's running job (after the stale check), None when it is free for a new one."""
    _reap()
    with reading(workspace.db_path) as conn:
        running = select_jobs(conn, 1, "running")
    if not running:
        return None
    job = current_job(workspace, running[0].id)
    return job if job.status == "running" else None


def list_jobs(workspace: Workspace, limit: int = 20) -> list[JobRecord]:
    """The most recent jobs, newest first, stale ones marked failed."""
    _reap()
    workspace.mark_stale_jobs()
    return workspace.jobs(limit)


# --- cancelling ----------------------------------------------------------------------------

def cancel_job(workspace: Workspace, job_id: int, grace_s: float = CANCEL_GRACE_S) -> JobRecord:
    """Cancel a running job and return its final record (normally "cancelled").

    Sets the cancel request, which the worker sees at its next progress write (JobCancelled stops
    the fit; checkpoints already written keep the progress for ``resume_job``). A worker that has
    not stopped after ``grace_s`` (stuck in one long step) is terminated, then killed. A job that
    finished on its own meanwhile keeps its status ("done").
    """
    job = current_job(workspace, job_id)
    if job.status != "running":
        raise WorkspaceError(f"job {job_id} is not running (it is {job.status}); nothing to cancel")
    workspace.update_job(job_id, metrics={CANCEL_KEY: now_iso()})
    if not _wait(lambda: _ended(workspace, job_id), grace_s):
        _terminate(workspace.job(job_id).pid)
    if workspace.job(job_id).status == "running":
        workspace.finish_job(job_id, "cancelled", CANCELLED_MESSAGE + " (the worker was stopped)")
    _reap()
    return workspace.job(job_id)


def _ended(workspace: Workspace, job_id: int) -> bool:
    job = workspace.job(job_id)
    return job.status != "running" and (job.pid is None or not pid_alive(job.pid))


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        _reap()  # our own child: reaped, so it stops counting as alive
        time.sleep(_POLL_S)
    return True


def _terminate(pid: int | None) -> None:
    """SIGTERM the worker's process group, SIGKILL it when it is still there after KILL_WAIT_S."""
    if pid is None or not pid_alive(pid):
        return
    _signal(pid, signal.SIGTERM)
    if not _wait(lambda: not pid_alive(pid), KILL_WAIT_S) and os.name != "nt":
        _signal(pid, signal.SIGKILL)
        _wait(lambda: not pid_alive(pid), KILL_WAIT_S)


def _signal(pid: int, sig: int) -> None:
    try:
        if os.name != "nt" and os.getpgid(pid) == pid:  # the worker leads its group: its children too
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass

