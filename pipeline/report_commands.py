"""``report``: write the self-contained HTML report of one category and method.

The report reads what ``evaluate`` stored; a method that was fitted but never evaluated is
evaluated first (``--reevaluate`` forces it), so one command gives the full report.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.evaluation.evaluate import evaluate_method
from pipeline.evaluation.report import write_report
from pipeline.progress import TqdmProgress
from pipeline.workspace import Workspace


def report_command(
    workspace: Path, category: str, method: str, out: Path, device: str = "auto", worst: int = 8,
    reevaluate: bool = False,
) -> int:
    ws = Workspace.open(workspace, create=False)
    ws.category(category)  # a clear error for an unknown category
    if reevaluate or (ws.model_record(category, method) is not None and not ws.scores(category, method, split="test")):
        progress = TqdmProgress()
        try:
            evaluate_method(ws, category, method, device=device, progress=progress)
        finally:
            progress.close()
    path = write_report(ws, category, method, out, n_worst=worst)
    print(f"{category} / {method}: report -> {path}")
    return 0
