"""Helpers the benchmark scripts share (``lgst_benchmark.py``, ``real_benchmark.py``)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pipeline.evaluation.evaluate import EvaluationResult  # noqa: E402
from pipeline.methods.aecsad.method import STATS_FILE  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def figures(result: EvaluationResult) -> dict:
    """The JSON-ready figures of one evaluation: image AUROC and AUPRO per defect kind, each branch's
    and each subtype's AUROC, test image counts per kind, fit and evaluate seconds."""
    return {"auroc": result.auroc, "aupro": result.aupro, "branch_auroc": result.branch_auroc,
            "subtype_auroc": result.subtype_auroc, "n": result.n, "seconds": result.seconds}


def lgst_length(ws: Workspace, category: str, method: str) -> dict:
    """``lgst_steps`` and ``lgst_train_seconds`` the fit recorded (a time budget may cut the steps)."""
    stats = ws.method_dir(category, method) / STATS_FILE
    if not stats.is_file():
        return {}
    recorded = json.loads(stats.read_text())
    return {k: recorded[k] for k in ("lgst_steps", "lgst_train_seconds") if k in recorded}


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of this checkout (read-only); ``None`` without git or outside a repository."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def run_info(command: list[str], device: torch.device) -> dict:
    """What a reader needs to reproduce or compare a benchmark: command, commit, date, machine."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "command": command, "git_commit": git_commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "nproc": cpus, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "platform": platform.platform(), "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        },
    }
