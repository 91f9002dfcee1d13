"""Measure the segmentation network and the histogram method on the synthetic benchmark.

Per category: labels from the offline pseudo-label chain (``--labels pseudo``: default settings or ``--set`` ones,
no detector, classic segmenter) or the generator's true maps (``--labels true``, to tell the
network's quality apart from the pseudo-labels'); then ``fit --method histogram`` (which trains
the segmentation network with the chosen profile) and ``evaluate``, the same code paths as the
CLI. Reported: mean IoU (background included) of the predicted ``test/good`` maps against the
true component maps after one-to-one Hungarian matching of predicted ids to true classes, the
training minutes, and the histogram method's image AUROC (logical, the count-rule subtypes
only, each subtype, structural).

    .venv/bin/python -m pipeline synth --out /tmp/plsynth
    OMP_NUM_THREADS=1 .venv/bin/python scripts/segmentation_quality.py --data /tmp/plsynth --labels true --out seg_true.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pseudo_label_quality import drawn_boxes  # noqa: E402  (this folder)

from pipeline.data.discover import find_categories, load_category  # noqa: E402
from pipeline.data.images import load_rgb  # noqa: E402
from pipeline.data.registered import (
    load_workspace_category,  # noqa: E402
    register_category,  # noqa: E402
)
from pipeline.data.samples import LOCO_KIND_FOLDERS  # noqa: E402
from pipeline.evaluation.evaluate import evaluate_method  # noqa: E402
from pipeline.methods.runner import fit_method, load_detector
from pipeline.methods.segmentation.checkpoint import load_checkpoint  # noqa: E402
from pipeline.methods.segmentation.train import CHECKPOINT  # noqa: E402
from pipeline.metrics.auroc import auroc  # noqa: E402
from pipeline.pseudolabels import quality  # noqa: E402
from pipeline.pseudolabels.curation import set_boxes  # noqa: E402
from pipeline.pseudolabels.run import run_pseudo_labels  # noqa: E402
from pipeline.pseudolabels.settings import PseudoLabelSettings, with_assignments  # noqa: E402
from pipeline.pseudolabels.truth import store_true_labels  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402
from pipeline.workspace.files import atomic_write_json  # noqa: E402

METHOD = "histogram"
COUNT_SUBTYPES = {
    "pin_tray": ("missing_pin", "extra_pin"),
    "cable_connector": ("missing_cable", "extra_screw", "missing_screw"),
    "fastener_kit": ("missing_part", "extra_part", "swapped_part"),
}
"""Logical subtypes that change how many parts of a class there are (what histograms can see)."""
TARGET_MIOU, TARGET_AUROC = 0.8, 0.9


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic data root (python -m pipeline synth)")
    parser.add_argument("--categories", nargs="+", help="categories (default: all found)")
    parser.add_argument("--labels", choices=("pseudo", "true"), default="pseudo")
    parser.add_argument("--profile", choices=("quick", "paper"), default="quick")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workspace", type=Path, help="keep the workspace here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--set", action="append", default=[], metavar="PART.FIELD=VALUE", dest="assignments",
                        help="change one pseudo-label setting (as `pseudo-labels --set`), e.g. classic.refine_iterations=2")
    parser.add_argument("--draw", nargs="+", default=[], metavar="CLASS",
                        help="pseudo-labels with the manual detector: boxes around every part of these true classes "
                             "on the first --references training images, as a user would draw them on the Masks page "
                             "(see pseudo_label_quality.py --draw)")
    parser.add_argument("--references", type=int, default=2, help="images the simulated user draws on (default: 2)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return parser.parse_args(argv)


def matched_miou(predicted: list[np.ndarray], truth: list[np.ndarray]) -> tuple[float, dict[str, float]]:
    """Mean IoU over the true labels (background included) after one-to-one id matching;
    predicted ids left unmatched count as wrong everywhere."""
    mapping = {0: 0, **quality.match_clusters(predicted, truth)}
    lookup = np.full(256, -1, np.int64)
    for pred_id, true_id in mapping.items():
        lookup[pred_id] = true_id
    pred = np.concatenate([lookup[np.asarray(p, np.uint8)].ravel() for p in predicted])
    true = np.concatenate([np.asarray(t).ravel() for t in truth]).astype(np.int64)
    ious = {int(c): float(((pred == c) & (true == c)).sum() / max(1, ((pred == c) | (true == c)).sum()))
            for c in np.unique(true)}
    return float(np.mean(list(ious.values()))), {str(c): round(v, 3) for c, v in ious.items()}


def test_good_miou(ws: Workspace, category: str, device: torch.device | str) -> tuple[float, dict[str, float]]:
    """The fitted method's predicted maps of ``test/good`` vs the true maps, at the truth's size."""
    detector = load_detector(ws, category, METHOD, device)
    tests = load_workspace_category(ws, category).select("test", "good")
    truth = [np.asarray(Image.open(s.component_path).convert("L")) for s in tests]
    predicted = detector.label_maps([load_rgb(s.path) for s in tests])
    predicted = [np.array(Image.fromarray(p.astype(np.uint8)).resize(t.shape[::-1], Image.NEAREST))
                 for p, t in zip(predicted, truth)]
    return matched_miou(predicted, truth)


def subtype_aurocs(ws: Workspace, category: str, root: Path) -> dict[str, float | None]:
    """Logical AUROC of each anomaly subtype vs the good test images, and of the count subtypes."""
    subtypes = json.loads((root / "synth_info.json").read_text())["images"]
    rows = ws.scores(category, METHOD, split="test")
    good = [r.score for r in rows if r.kind == "good"]
    by_subtype: dict[str, list[float]] = {}
    for row in (r for r in rows if r.kind == "logical"):
        _, kind, name = row.image_key.split("/", 2)
        by_subtype.setdefault(subtypes[f"test/{LOCO_KIND_FOLDERS[kind]}/{name}"], []).append(row.score)

    def versus_good(bad: list[float]) -> float | None:
        return auroc([0] * len(good) + [1] * len(bad), good + bad) if bad else None

    out = {name: versus_good(scores) for name, scores in sorted(by_subtype.items())}
    counted = [s for name in COUNT_SUBTYPES.get(category, ()) for s in by_subtype.get(name, [])]
    out["count_rules"] = versus_good(counted)
    return out


def measure(root: Path, args: argparse.Namespace, scratch: Path) -> dict:
    ws = Workspace.open(scratch / f"{root.name}_{args.labels}", create=True)
    register_category(ws, root.parent, root.name)
    start = time.perf_counter()
    if args.labels == "true":
        store_true_labels(ws, root.name)
    else:
        settings = with_assignments(PseudoLabelSettings(), args.assignments)
        if args.draw:
            samples = load_category(root).select("train", "good")
            for key, boxes in drawn_boxes(root, samples, args.draw, args.references).items():
                set_boxes(ws, root.name, key, boxes)
        run_pseudo_labels(ws, root.name, settings, detector="manual" if args.draw else "none", segmenter="classic",
                          device=args.device)
    label_seconds = time.perf_counter() - start
    fit = fit_method(ws, root.name, METHOD, profile=args.profile, device=args.device, seed=args.seed)
    history = load_checkpoint(ws.method_dir(root.name, METHOD) / CHECKPOINT).history
    evaluation = evaluate_method(ws, root.name, METHOD, device=args.device, save_maps=False)
    miou, per_class = test_good_miou(ws, root.name, args.device)
    return {
        "category": root.name, "labels": args.labels, "profile": args.profile,
        "pseudo_label_settings_changed": args.assignments if args.labels == "pseudo" else [],
        "drawn_boxes": {"classes": args.draw, "references": args.references} if args.draw else None,
        "miou_test_good": round(miou, 4), "iou_per_true_class": per_class,
        "heldout_miou_last_epoch": history[-1]["miou"], "epochs": len(history),
        "label_minutes": round(label_seconds / 60, 2),
        "train_minutes": round(sum(r["seconds"] for r in history) / 60, 2),
        "fit_minutes": round(fit.seconds / 60, 2),
        "auroc": evaluation.auroc, "logical_auroc_by_subtype": subtype_aurocs(ws, root.name, root),
    }


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def print_table(results: list[dict]) -> None:
    print(f"{'category':16s} {'labels':6s} {'mIoU':>6s} {'train min':>9s} {'logical':>8s} {'count':>6s} {'struct':>6s}")
    for r in results:
        print(f"{r['category']:16s} {r['labels']:6s} {r['miou_test_good']:6.3f} {r['train_minutes']:9.1f} "
              f"{_fmt(r['auroc']['logical']):>8s} {_fmt(r['logical_auroc_by_subtype']['count_rules']):>6s} "
              f"{_fmt(r['auroc']['structural']):>6s}")


def meets_targets(report: dict) -> bool:
    count = report["logical_auroc_by_subtype"]["count_rules"]
    return report["miou_test_good"] >= TARGET_MIOU and (report["category"] not in COUNT_SUBTYPES
                                                        or (report["auroc"]["logical"] or 0) >= TARGET_AUROC
                                                        and (count or 0) >= TARGET_AUROC)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)  # 2 threads on a shared 2-core box are slower than 1
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = args.workspace or Path(tmp)
        for name in args.categories or find_categories(args.data):
            results.append(measure(args.data / name, args, scratch))
            print(json.dumps(results[-1]), flush=True)
    print_table(results)
    atomic_write_json(args.out, {"results": results})
    return 0 if all(meets_targets(r) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
