"""Fit and evaluate methods on synthetic categories; write one JSON with every figure.

    .venv/bin/python -m pipeline synth --out /tmp/synth
    .venv/bin/python scripts/lgst_benchmark.py --data /tmp/synth --workspace /tmp/ws \\
        --categories pin_tray bottle --methods instant aecsad csad --out results.json

Per category and method: fit minutes (and the LGST steps trained), image AUROC (logical, structural, mean), each branch's
AUROC and, on synthetic data, each anomaly subtype's (``subtype_auroc``). ``--extra-test ROOT``
also scores the fitted model on another synthetic root's test split (a larger one, e.g.
``synth --out /tmp/synthB --seed 7 --n-train 3 --n-test 50``), so a design choice is not fitted
to one small test set; those figures land under ``"extra_test"``. The workspace is left
registered to ``--data``, so a later ``calibrate`` reads the training root's validation images. ``csad`` after ``aecsad`` on the same workspace reuses the segmentation network
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

from bench_common import figures, lgst_length  # noqa: E402  (scripts/ is on sys.path when a script runs)

from pipeline.data.registered import register_category  # noqa: E402
from pipeline.evaluation.evaluate import evaluate_method  # noqa: E402
from pipeline.methods.runner import fit_method  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402
from pipeline.workspace.files import atomic_write_json  # noqa: E402

SHARED = ("segmentation.safetensors", "segmentation_history.json")


def run_one(ws: Workspace, data: Path, category: str, method: str, device: str,
            extra_tests: tuple[Path, ...] = ()) -> dict:
    _reuse_segmentation(ws, category, method)
    start = time.perf_counter()
    fit_method(ws, category, method, device=device)
    fit_min = (time.perf_counter() - start) / 60
    extra = {}
    for root in extra_tests:  # before the main test set, so the workspace ends on --data
        register_category(ws, root, category)
        extra[str(root)] = figures(evaluate_method(ws, category, method, device=device, save_maps=False))
    register_category(ws, data, category)
    result = evaluate_method(ws, category, method, device=device, save_maps=False)
    return {"fit_minutes": round(fit_min, 2), **lgst_length(ws, category, method), **figures(result),
            **({"extra_test": extra} if extra else {})}


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
    parser.add_argument("--extra-test", type=Path, nargs="*", default=[],
                        help="other synthetic roots whose test split each fitted model is also scored on")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # two processes on 2 cores with 2 threads each run several times slower
    ws = Workspace.open(args.workspace, create=True)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for category in args.categories:
        register_category(ws, args.data, category)
        for method in args.methods:
            row = run_one(ws, args.data, category, method, args.device, tuple(args.extra_test))
            results.setdefault(category, {})[method] = row
            atomic_write_json(args.out, results)
            print(category, method, json.dumps(row["auroc"]), f"{row['fit_minutes']} min", flush=True)
            for root, extra in row.get("extra_test", {}).items():
                print(f"  on {root}:", json.dumps(extra["auroc"]), flush=True)


if __name__ == "__main__":
    main()
