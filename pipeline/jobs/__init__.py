"""Background jobs: ``fit`` in a detached process that reports stage/step/ETA/losses to the
workspace, can be cancelled, and resumes from its checkpoints after a crash (SPEC §7).

The Train page and ``python -m pipeline jobs ...`` use only what is exported here; the record
itself is read with ``Workspace.job`` (or ``current_job``, which also notices a dead worker).
"""

from pipeline.jobs.control import (
    CANCEL_GRACE_S,
    FIT_KIND,
    IMPORTS_ENV,
    FitParams,
    cancel_job,
    current_job,
    job_dir,
    job_log,
    launch_fit_job,
    list_jobs,
    resume_job,
    running_job,
)
from pipeline.jobs.tracker import CANCEL_KEY, MAX_POINTS, JobCancelled, JobTracker

__all__ = [
    "CANCEL_GRACE_S",
    "CANCEL_KEY",
    "FIT_KIND",
    "IMPORTS_ENV",
    "MAX_POINTS",
    "FitParams",
    "JobCancelled",
    "JobTracker",
    "cancel_job",
    "current_job",
    "job_dir",
    "job_log",
    "launch_fit_job",
    "list_jobs",
    "resume_job",
    "running_job",
]
