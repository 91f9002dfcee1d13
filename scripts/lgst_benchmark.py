"""Fit and evaluate methods on synthetic categories; write one JSON with every figure.

    .venv/bin/python -m pipeline synth --out /tmp/synth
    .venv/bin/python scripts/lgst_benchmark.py --data /tmp/synth --workspace /tmp/ws \\
        --categories pin_tray bottle --methods instant aecsad csad --out results.json

Per category and method: fit minutes, image AUROC (logical, structural, mean) and each branch's
AUROC. ``csad`` after ``aecsad`` on the same workspace reuses the segmentation network
``aecsad`` trained (same settings and pseudo-labels: its checkpoint is complete, so it is not
trained again), which only saves time; the LGST students are trained from scratch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pipeline.commands import register_category  # noqa: E402
from pipeline.evaluation.evaluate import evaluate_method  # noqa: E402
from pipeline.methods.runner import fit_method  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402
from pipeline.workspace.files import atomic_write_json  # noqa: E402

SHARED = ("segmentation.safetensors", "segmentation_history.json")


def run_one(ws: Workspace, category: str, method: str, device: str) -> dict:
    _reuse_segmentation(ws, category, method)
    start = time.perf_counter()
    fit_method(ws, category, method, device=device)
    fit_min = (time.perf_counter() - start) / 60
    result = evaluate_method(ws, category, method, device=device, save_maps=False)
    return {"fit_minutes": round(fit_min, 2), "auroc": result.auroc, "branch_auroc": result.branch_auroc,
            "n": result.n}


def _reuse_segmentation(ws: Workspace, category: str, method: str) -> None:
    target = ws.method_dir(category, method)
    for donor in ("aecsad", "csad", "histogram"):
        source = ws.method_dir(category, donor)
        if donor != method and (source / SHARED[0]).is_file() and not (target / SHARED[0]).is_file():
            target.mkdir(parents=True, exist_ok=True)
            for name in SHARED:
                if (source / name).is_file():
                    shutil.copy2(source / name, target / name)
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--categories", nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", default=["instant", "aecsad", "csad"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # two processes on 2 cores with 2 threads each run several times slower
    ws = Workspace.open(args.workspace, create=True)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for category in args.categories:
        register_category(ws, args.data, category)
        for method in args.methods:
            figures = run_one(ws, category, method, args.device)
            results.setdefault(category, {})[method] = figures
            atomic_write_json(args.out, results)
            print(category, method, json.dumps(figures["auroc"]), f"{figures['fit_minutes']} min", flush=True)


if __name__ == "__main__":
    main()
