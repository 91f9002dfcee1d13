"""``report``: write the self-contained HTML report of one category and method.

The report reads what ``evaluate`` stored; a method that was fitted but never evaluated is
evaluated first (``--reevaluate`` forces it), so one command gives the full report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import args as shared
from pipeline.progress import TqdmProgress
from pipeline.workspace import Workspace


def register(sub: shared.Subcommands) -> None:
    """Add ``report`` to the command parsers ``sub``."""
    p = sub.add_parser("report", help="write a self-contained HTML report (AUROC, ROC curves, threshold, worst images)")
    shared.add_workspace(p, shared.EXISTING_WORKSPACE)
    shared.add_category(p, "a category fitted in it (evaluated first if it never was)")
    shared.add_method(p)
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    p.add_argument("--worst", type=int, default=8, help="worst test images shown with their heat maps (default: 8)")
    p.add_argument("--reevaluate", action="store_true", help="score the test images again before writing the report")
    shared.add_device(p, shared.DEVICE_HELP + " (only used to evaluate)")
    p.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    """Evaluate first when needed, then write the report and print where it went."""
    from pipeline.evaluation.evaluate import evaluate_method
    from pipeline.evaluation.report import write_report

    ws = Workspace.open(args.workspace, create=False)
    ws.category(args.category)  # a clear error for an unknown category
    if args.reevaluate or _never_evaluated(ws, args.category, args.method):
        progress = TqdmProgress()
        try:
            evaluate_method(ws, args.category, args.method, device=args.device, progress=progress)
        finally:
            progress.close()
    path = write_report(ws, args.category, args.method, args.out, n_worst=args.worst)
    print(f"{args.category} / {args.method}: report -> {path}")
    return 0


def _never_evaluated(ws: Workspace, category: str, method: str) -> bool:
    """Fitted, but no test scores stored yet."""
    return ws.model_record(category, method) is not None and not ws.scores(category, method, split="test")
