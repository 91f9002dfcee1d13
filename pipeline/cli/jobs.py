"""``jobs start|list|show|cancel|resume``: fits in background processes (``pipeline.jobs``), and the
hidden ``job-worker`` command those processes run."""

from __future__ import annotations

import argparse
import sys

from pipeline.cli import args as shared
from pipeline.data.registered import register_category
from pipeline.workspace import Workspace


def register(sub: shared.Subcommands) -> None:
    """Add ``jobs`` and its subcommands to the command parsers ``sub``."""
    p = sub.add_parser("jobs", help="fit in a background process: start, list, show, cancel, resume jobs")
    jobs = p.add_subparsers(dest="jobs_command", required=True)
    start = jobs.add_parser("start", help="start fitting a registered category in the background; prints the job id")
    shared.add_workspace(start, "an existing workspace (or one --data creates)")
    shared.add_category(start, "a category registered in it (import command, or --data)")
    shared.add_method(start)
    shared.add_data(start, "register the category from this folder first, like fit does", required=False)
    shared.add_profile(start)
    shared.add_device(start)
    shared.add_seed(start)
    shared.add_backbone(start)
    shared.add_training_settings(start)
    start.set_defaults(handler=start_job)
    p = jobs.add_parser("list", help="recent jobs, newest first")
    shared.add_workspace(p)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=list_jobs)
    for name, text, handler in (
        ("show", "a job's stage, step, ETA, last losses and log tail", show_job),
        ("cancel", "cancel a running job (checkpoints are kept; resume continues from them)", cancel_job),
        ("resume", "start a failed or cancelled job again from its checkpoints; prints the new id", resume_job),
    ):
        p = jobs.add_parser(name, help=text)
        shared.add_workspace(p)
        p.add_argument("--job", type=int, required=True, help="job id (see jobs list)")
        if name == "show":
            p.add_argument("--log-lines", type=int, default=20, help="lines of the worker log to show")
        p.set_defaults(handler=handler)


def worker_parser() -> argparse.ArgumentParser:
    """``job-worker``: started by ``pipeline.jobs.launch_fit_job``, not by people, so not in --help."""
    parser = argparse.ArgumentParser(prog="python -m pipeline job-worker")
    shared.add_workspace(parser)
    parser.add_argument("--job", type=int, required=True)
    parser.set_defaults(command="job-worker", handler=run_worker)
    return parser


def run_worker(args: argparse.Namespace) -> int:
    """Run job ``--job``'s fit in this process (the detached worker)."""
    from pipeline.jobs.worker import run_worker as work

    return work(args.workspace, args.job)


def start_job(args: argparse.Namespace) -> int:
    """Start a fit job in the background; prints its id alone on stdout (for scripts)."""
    from pipeline.jobs import launch_fit_job
    from pipeline.methods.training_settings import parse_training_settings

    changes = parse_training_settings(args.assignments)  # a typo exits first; launch checks the method
    ws = Workspace.open(args.workspace, create=args.data is not None)
    if args.data is not None:
        register_category(ws, args.data, args.category)
    job_id = launch_fit_job(ws, args.category, args.method, profile=args.profile, device=args.device,
                            seed=args.seed, backbone=args.backbone, settings_changes=changes)
    print(job_id)
    print(f"started job {job_id} (fit {args.method} on {args.category}); follow it with "
          f"`python -m pipeline jobs show --workspace {ws.path} --job {job_id}`", file=sys.stderr)
    return 0


def list_jobs(args: argparse.Namespace) -> int:
    """The most recent jobs, one line each."""
    from pipeline.jobs import list_jobs as recent
    from pipeline.jobs.describe import job_line

    jobs = recent(Workspace.open(args.workspace), args.limit)
    if not jobs:
        print("no jobs in this workspace")
    for job in jobs:
        print(job_line(job))
    return 0


def show_job(args: argparse.Namespace) -> int:
    """A job's status, position, parameters and losses, then its log's tail."""
    from pipeline.jobs import current_job, job_log
    from pipeline.jobs.describe import describe_job

    ws = Workspace.open(args.workspace)
    for line in describe_job(current_job(ws, args.job)):
        print(line)
    log = job_log(ws, args.job, args.log_lines)
    if log:
        print(f"log (last {args.log_lines} lines):")
        print("\n".join("  " + line for line in log.splitlines()))
    return 0


def cancel_job(args: argparse.Namespace) -> int:
    """Ask a running job to stop (its checkpoints stay)."""
    from pipeline.jobs import cancel_job as cancel

    job = cancel(Workspace.open(args.workspace), args.job)
    print(f"job {args.job}: {job.status}" + (f" ({job.message})" if job.message else ""))
    return 0


def resume_job(args: argparse.Namespace) -> int:
    """Relaunch a failed/cancelled job; prints the new job's id alone on stdout."""
    from pipeline.jobs import resume_job as resume

    new_id = resume(Workspace.open(args.workspace), args.job)
    print(new_id)
    print(f"job {args.job} resumed as job {new_id}", file=sys.stderr)
    return 0


