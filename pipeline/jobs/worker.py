"""The worker process of a fit job: ``python -m pipeline job-worker --workspace W --job N``.

Runs ``fit_method`` with the job's parameters, its progress and metrics going to the job record
through a ``JobTracker``, and ends the record "done", "failed" (with the error on one line; the
traceback is in the log) or "cancelled". Started by ``launch_fit_job``; not meant to be typed.
"""

from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import asdict
from pathlib import Path

from pipeline.jobs.control import CANCELLED_MESSAGE, IMPORTS_ENV, FitParams
from pipeline.jobs.tracker import JobCancelled, JobTracker
from pipeline.workspace import Workspace


def one_line(exc: BaseException) -> str:
    """``"Type: message"`` on one line, for ``JobRecord.message``."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def import_plugins(names: str | None = None) -> None:
    """Import what ``$PIPELINE_JOB_IMPORTS`` names: comma-separated ``module`` or ``module:function``
    entries (the function is called without arguments), e.g. to register extra methods; the tests
    register slow ones this way."""
    for entry in (names if names is not None else os.environ.get(IMPORTS_ENV, "")).split(","):
        module_name, _, function = entry.strip().partition(":")
        if module_name:
            module = importlib.import_module(module_name)
            if function:
                getattr(module, function)()


def run_worker(workspace_path: Path, job_id: int) -> int:
    """Run job ``job_id`` of the workspace to its end; returns the process exit code."""
    import_plugins()
    workspace = Workspace.open(workspace_path)
    job = workspace.job(job_id)
    if job.status != "running":
        print(f"job {job_id} is {job.status}; nothing to do", flush=True)
        return 0
    workspace.update_job(job_id, pid=os.getpid(), stage="starting")
    params = FitParams.from_dict(job.params)
    resumed = f", resuming job {job.params['resumed_from']}" if "resumed_from" in job.params else ""
    print(f"job {job_id}: fit {job.method} on {job.category} with {asdict(params)}{resumed}", flush=True)
    tracker = JobTracker(workspace, job_id, log=lambda line: print(line, flush=True))
    return _run_fit(workspace, job.category, job.method, params, tracker)


def _run_fit(workspace: Workspace, category: str, method: str, params: FitParams, tracker: JobTracker) -> int:
    from pipeline.methods.runner import fit_method  # imported here: loads torch

    job_id = tracker.job_id
    try:
        tracker.check_cancel()
        summary = fit_method(
            workspace, category, method, profile=params.profile, device=params.device, seed=params.seed,
            backbone=params.backbone, progress=tracker.progress, report=tracker.report,
            settings_changes=params.settings_changes,
        )
    except (JobCancelled, KeyboardInterrupt):
        print(f"job {job_id}: {CANCELLED_MESSAGE}", flush=True)
        return _finish(workspace, tracker, "cancelled", CANCELLED_MESSAGE, 0)
    except Exception as exc:  # the record must say why, whatever failed
        traceback.print_exc()
        return _finish(workspace, tracker, "failed", one_line(exc), 1)
    message = (f"fitted {method} on {category}: {summary.n_train} train images in {summary.seconds:.1f} s; "
               f"threshold {summary.threshold:.4g} flags {summary.flagged} of {summary.n_validation}"
               + "".join(f"; {note}" for note in summary.notes))
    print(f"job {job_id}: {message}", flush=True)
    workspace.update_job(job_id, metrics={"summary": asdict(summary)})
    return _finish(workspace, tracker, "done", message, 0)


def _finish(workspace: Workspace, tracker: JobTracker, status: str, message: str, code: int) -> int:
    """Write the pending progress, then the final status unless someone else already ended it."""
    try:
        tracker.flush()
    finally:
        if workspace.job(tracker.job_id).status == "running":
            workspace.finish_job(tracker.job_id, status, message)
    return code


__all__ = ["import_plugins", "one_line", "run_worker"]
