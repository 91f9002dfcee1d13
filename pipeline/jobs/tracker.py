"""What a running job tells the workspace: stage/step/total, an ETA and a loss history.

``JobTracker.progress`` is the job's ``ProgressFn`` and ``JobTracker.report`` its ``MetricsFn``.
Loops call them many times a second, so writes are throttled (every stage change, the end of a
stage, otherwise at most every ``interval_s``) and the cancel request is read at the same moments:
SQLite sees a few small transactions a second at most, whatever the loop's speed.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from pipeline.workspace import Workspace

MAX_POINTS = 500
"""Most metric records kept per job; beyond it the history is thinned to every other point, so
the loss curve always spans the whole run (at a coarser step)."""

WRITE_INTERVAL_S = 0.5
"""Least time between two progress writes within one stage."""

LOG_INTERVAL_S = 5.0
"""Least time between two metrics lines in the worker log (every record is in the job record)."""

CANCEL_KEY = "cancel_requested"
"""Metrics key set (to the request time) by ``cancel_job``; the worker stops at its next write."""


class JobCancelled(BaseException):
    """Raised from a job's progress callback when the user asked to cancel it.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that a method's ``except Exception`` (an
    out-of-memory retry, say) does not swallow it; checkpoints already written keep the progress.
    """


def stage_eta(done: int, total: int, done_at_start: int, seconds: float) -> float | None:
    """Seconds left in a stage from its rate so far; None until a rate is known or without a total."""
    if total > 0 and done >= total:
        return 0.0
    if total <= 0 or seconds <= 0 or done <= done_at_start:
        return None
    rate = (done - done_at_start) / seconds
    return max(total - done, 0) / rate


def clean_record(record: dict, stage: str, step: int) -> dict:
    """A JSON-safe copy of a metrics record, with ``stage`` and ``step`` filled in when missing.

    Numbers become floats/ints (numpy and 0-d torch values included); NaN and infinities become
    None (JSON has neither); strings are kept; anything else is dropped.
    """
    out: dict[str, Any] = {"stage": stage, "step": step}
    for key, value in record.items():
        if isinstance(value, str) or value is None:
            out[str(key)] = value
        elif isinstance(value, bool):
            out[str(key)] = value
        elif isinstance(value, int):
            out[str(key)] = value
        elif hasattr(value, "__float__"):
            number = float(value)
            out[str(key)] = number if math.isfinite(number) else None
    return out


def format_record(record: dict) -> str:
    """``stage step N: epoch 3, loss 0.31, ce 0.2, miou 0.8`` for logs (epoch and loss first)."""
    keys = sorted((k for k in record if k not in ("stage", "step")),
                  key=lambda k: (k not in ("epoch", "loss"), k != "epoch"))
    values = ", ".join(f"{k} {record[k]:.4g}" if isinstance(record[k], float) else f"{k} {record[k]}" for k in keys)
    return f"{record.get('stage', '')} step {record.get('step', '')}: {values}"


def thin(history: list[dict], max_points: int = MAX_POINTS) -> list[dict]:
    """``history`` itself while short enough, else every other point plus the latest one."""
    if len(history) <= max_points:
        return history
    return history[:-1:2] + [history[-1]]


class JobTracker:
    """Progress and metrics sink of one job, writing to its workspace record.

    Metrics written (``JobRecord.metrics``): ``eta_s`` (seconds left in the current stage, None
    when unknown), ``elapsed_s`` (since the tracker started), ``stage_elapsed_s``, ``losses`` (the
    metric records, oldest first, at most ``MAX_POINTS``) and ``last`` (the newest record).
    """

    def __init__(
        self, workspace: Workspace, job_id: int, interval_s: float = WRITE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] = print,
    ) -> None:
        self.workspace, self.job_id, self.interval_s = workspace, job_id, interval_s
        self.clock, self.log = clock, log
        self.started = clock()
        self.stage, self.step, self.total = "", 0, 0
        self._stage_started, self._stage_first_step = self.started, 0
        self._last_write = self._last_log = -math.inf
        self.history: list[dict] = []
        self._history_dirty = False

    # --- the two callbacks -------------------------------------------------------------

    def progress(self, stage: str, done: int, total: int) -> None:
        """``ProgressFn``: remember the position; write it when due; raise JobCancelled if asked."""
        done, total = int(done), int(total)
        new_stage = stage != self.stage
        if new_stage:
            self.stage, self._stage_started, self._stage_first_step = stage, self.clock(), done
            self.log(f"stage: {stage} ({total} steps)" if total else f"stage: {stage}")
        self.step, self.total = done, total
        if new_stage or (total > 0 and done >= total) or self._due():
            self.write()

    def report(self, record: dict) -> None:
        """``MetricsFn``: keep a training metrics record; written with the next due write."""
        self.history = thin(self.history + [clean_record(record, self.stage, self.step)])
        self._history_dirty = True
        if self.clock() - self._last_log >= LOG_INTERVAL_S:
            self._last_log = self.clock()
            self.log(format_record(self.history[-1]))
        if self._due():
            self.write()

    # --- writing -----------------------------------------------------------------------

    def _due(self) -> bool:
        return self.clock() - self._last_write >= self.interval_s

    def metrics(self) -> dict:
        """The metrics to write now (the loss history only when it changed)."""
        now = self.clock()
        values: dict[str, Any] = {
            "eta_s": stage_eta(self.step, self.total, self._stage_first_step, now - self._stage_started),
            "elapsed_s": round(now - self.started, 2),
            "stage_elapsed_s": round(now - self._stage_started, 2),
        }
        if self._history_dirty:
            values.update(losses=self.history, last=self.history[-1])
        return values

    def write(self) -> None:
        """Write the position and metrics now, then stop if a cancel was requested."""
        self.workspace.update_job(self.job_id, stage=self.stage, step=self.step, total=self.total,
                                  metrics=self.metrics())
        self._history_dirty = False
        self._last_write = self.clock()
        self.check_cancel()

    def check_cancel(self) -> None:
        """Raise JobCancelled when the record asks for it or no longer says "running"."""
        job = self.workspace.job(self.job_id)
        if job.metrics.get(CANCEL_KEY) or job.status != "running":
            raise JobCancelled(f"job {self.job_id} cancelled")

    def flush(self) -> None:
        """Write what is pending, without the cancel check (used while the job ends)."""
        self.workspace.update_job(self.job_id, stage=self.stage, step=self.step, total=self.total,
                                  metrics=self.metrics())
        self._history_dirty = False


__all__ = ["CANCEL_KEY", "MAX_POINTS", "JobCancelled", "JobTracker", "clean_record", "stage_eta", "thin"]
