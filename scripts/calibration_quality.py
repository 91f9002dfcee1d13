"""Few-shot calibration vs equal-weight fusion on fitted multi-branch models (issue 8 measurement).

Per category of an existing workspace with a fitted ``--method`` (histogram, aecsad, csad): the
test split is scored once (``evaluate``; branch z-scores kept); then, ``--repeats`` times, ``--marked``
bad test images are drawn at random (seeded), the fusion weights are calibrated on them and the
good validation images, and both fusions' image AUROC is computed on the remaining test images.
The first draw also goes through the workspace path a user takes (``label`` → ``calibrate`` →
apply → ``evaluate``), and its AUROC must equal the in-memory figure. "Equal" is the method's own
fusion (AeCSAD/CSAD: the sum of each image's three largest z-scores). The workspace is copied first
(``--scratch``), so the original is left as it was.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/calibration_quality.py --workspace /tmp/meas/ws1 \\
        --method aecsad --out calibration.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pipeline.evaluation.calibrate import apply_calibration, calibrate_method  # noqa: E402
from pipeline.evaluation.evaluate import BRANCH_SCORES_FILE, evaluate_method  # noqa: E402
from pipeline.methods.calibrated import CALIBRATION_FILE  # noqa: E402
from pipeline.metrics.auroc import image_auroc_by_kind  # noqa: E402
from pipeline.metrics.calibration import CalibrationSettings, calibrate_fusion, equal_fusion  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402
from pipeline.workspace.files import atomic_write_json  # noqa: E402


def draw_marked(keys: list[str], kinds: list[str], n: int, rng: np.random.Generator) -> list[int]:
    """Indices of ``n`` bad test images, logical and structural as evenly as they come."""
    bad = [i for i, k in enumerate(kinds) if k != "good"]
    return sorted(int(i) for i in rng.choice(bad, size=min(n, len(bad)), replace=False))


def one_draw(val_z: np.ndarray, test_z: np.ndarray, kinds: list[str], marked: list[int],
             branches: tuple[str, ...], top_k: int) -> dict:
    """Calibrate on ``marked`` test images; AUROC of both fusions on the other test images."""
    cal = calibrate_fusion(val_z, test_z[marked], branches, CalibrationSettings(), top_k=top_k)
    rest = [i for i in range(len(kinds)) if i not in set(marked)]
    rest_kinds = [kinds[i] for i in rest]
    return {
        "mode": cal.mode, "weights": dict(zip(branches, cal.weights)), "loo_auroc": cal.loo_auroc,
        "equal": image_auroc_by_kind(rest_kinds, equal_fusion(test_z[rest], top_k).tolist()),
        "calibrated": image_auroc_by_kind(rest_kinds, (test_z[rest] @ np.asarray(cal.weights)).tolist()),
    }


def measure(ws: Workspace, category: str, method: str, marked: int, repeats: int, seed: int, device: str) -> dict:
    evaluate_method(ws, category, method, device=device, save_maps=False)
    stored = json.loads((ws.method_dir(category, method) / BRANCH_SCORES_FILE).read_text())
    keys, kinds = stored["keys"], stored["kinds"]
    rng = np.random.default_rng(seed)
    draws = [draw_marked(keys, kinds, marked, rng) for _ in range(repeats)]
    for i in draws[0]:  # the first draw through the user's path
        ws.set_image_label(category, keys[i], "bad")
    cal = calibrate_method(ws, category, method, device=device)
    branches = cal.branches
    kept = json.loads((ws.method_dir(category, method) / CALIBRATION_FILE).read_text())["validation"]
    val_z = np.asarray(kept["z"])
    test_z = np.array([[stored["branches"][f"z_{b}"][i] for b in branches] for i in range(len(keys))])
    results = [one_draw(val_z, test_z, kinds, d, branches, cal.top_k) for d in draws]
    if cal.threshold is not None:
        apply_calibration(ws, category, method, on=True)
    workspace_result = evaluate_method(ws, category, method, device=device, save_maps=False).fusion_comparison
    mean = {fusion: _mean_auroc(results, fusion) for fusion in ("equal", "calibrated")}
    return {"branches": list(branches), "marked": marked, "repeats": repeats, "draws": results, "mean": mean,
            "workspace_path_first_draw": workspace_result,
            "first_draw_matches": bool(workspace_result and np.isclose(
                workspace_result["calibrated"]["mean"], results[0]["calibrated"]["mean"]))}


def _mean_auroc(draws: list[dict], fusion: str) -> dict[str, float]:
    return {k: float(np.mean([r[fusion][k] for r in draws if r[fusion][k] is not None]))
            for k in ("logical", "structural", "mean")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True, help="workspace with fitted models (copied, not changed)")
    parser.add_argument("--categories", nargs="+", help="default: every category with a fitted --method")
    parser.add_argument("--method", default="aecsad")
    parser.add_argument("--marked", type=int, default=5, help="bad test images marked per draw")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scratch", type=Path, help="where the workspace copy goes (default: a temp folder)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="calibration_"))
    copy = scratch / args.workspace.name
    shutil.copytree(args.workspace, copy, dirs_exist_ok=True)
    ws = Workspace.open(copy)
    categories = args.categories or [c.name for c in ws.categories() if ws.model_record(c.name, args.method)]
    report = {}
    for category in categories:
        report[category] = measure(ws, category, args.method, args.marked, args.repeats, args.seed, args.device)
        atomic_write_json(args.out, report)
        m = report[category]["mean"]
        print(f"{category}: equal {m['equal']} | calibrated {m['calibrated']}", flush=True)


if __name__ == "__main__":
    main()
