"""A background job in words: the lines ``jobs list`` and ``jobs show`` print."""

from __future__ import annotations

from pipeline.jobs.tracker import format_record
from pipeline.workspace import JobRecord


def format_seconds(seconds: float | None) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"``, ``"12 s"``; "unknown" for None."""
    if seconds is None:
        return "unknown"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def position(job: JobRecord) -> str:
    """``"train lgst 120/500, ETA 3 min 05 s"``: the stage, its step and (while running) its ETA."""
    if not job.stage:
        return "-"
    step = f" {job.step}/{job.total}" if job.total else (f" {job.step}" if job.step else "")
    eta = job.metrics.get("eta_s")
    return f"{job.stage}{step}" + (f", ETA {format_seconds(eta)}" if job.status == "running" and eta is not None else "")


def job_line(job: JobRecord) -> str:
    """One row of ``jobs list``: id, status, what it does, where it is, when it last reported."""
    return (f"{job.id:>4}  {job.status:<9}  {job.kind} {job.method} on {job.category}  {position(job)}  "
            f"(updated {job.updated_at[:19].replace('T', ' ')})")


def describe_job(job: JobRecord) -> list[str]:
    """Human lines for ``jobs show``: status, position and ETA, parameters, the last losses."""
    lines = [f"job {job.id}: {job.kind} {job.method} on {job.category}: {job.status}"
             + (" (cancel requested)" if job.status == "running" and job.metrics.get("cancel_requested") else "")]
    lines.append(f"  stage: {position(job)}")
    if job.status == "running":
        lines.append(f"  ETA of this stage: {format_seconds(job.metrics.get('eta_s'))}")
    lines.append("  params: " + ", ".join(f"{k} {v}" for k, v in job.params.items()))
    lines.append(f"  pid {job.pid}; started {job.started_at[:19].replace('T', ' ')}; "
                 f"updated {job.updated_at[:19].replace('T', ' ')} (UTC)")
    if job.message:
        lines.append(f"  message: {job.message}")
    losses = job.metrics.get("losses", [])
    if losses:
        lines.append(f"  last metrics ({min(len(losses), 5)} of {len(losses)}):")
    lines.extend("    " + format_record(record) for record in losses[-5:])
    return lines
