"""Measure the segmentation network against the synthetic benchmark's true component maps.

Per category: labels from the offline pseudo-label chain (``--labels pseudo``, default settings,
no detector, classic segmenter) or the generator's true maps (``--labels true``, to tell the
network's quality from the pseudo-labels'); train with a profile; predict ``test/good``; match
predicted ids to true classes (Hungarian on shared pixels); report mean IoU (background included)
and the training minutes.

    .venv/bin/python -m pipeline synth --out /tmp/plsynth
    .venv/bin/python scripts/segmentation_quality.py --data /tmp/plsynth --labels pseudo --out seg.json
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pipeline.commands import register_category  # noqa: E402
from pipeline.data.discover import find_categories, load_category  # noqa: E402
from pipeline.data.images import load_rgb  # noqa: E402
from pipeline.device import resolve_device  # noqa: E402
from pipeline.methods.segmentation.data import SegmentationData, _resize_image, _resize_map, load_segmentation_data  # noqa: E402
from pipeline.methods.segmentation.settings import SegmentationSettings  # noqa: E402
from pipeline.methods.segmentation.torch_model import predict_labels  # noqa: E402
from pipeline.methods.segmentation.train import train_segmentation  # noqa: E402
from pipeline.pseudolabels import quality  # noqa: E402
from pipeline.pseudolabels.run import run_pseudo_labels  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic data root (python -m pipeline synth)")
    parser.add_argument("--categories", nargs="+", help="categories (default: all found)")
    parser.add_argument("--labels", choices=("pseudo", "true"), default="pseudo")
    parser.add_argument("--profile", choices=("quick", "paper"), default="quick")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return parser.parse_args(argv)


def true_label_data(root: Path, side: int, seed: int) -> SegmentationData:
    """The generator's true maps as if they were pseudo-labels (every image reliable)."""
    samples = load_category(root).select("train", "good")
    images = [_resize_image(load_rgb(s.path), side) for s in samples]
    maps = [_resize_map(np.asarray(load_rgb(s.component_path))[..., 0], side) for s in samples]
    held = set(np.random.default_rng(seed).permutation(len(samples))[: max(1, len(samples) // 10)].tolist())
    names = json.loads((root / "synth_info.json").read_text())["classes"]
    pick = lambda items, inside: tuple(x for i, x in enumerate(items) if (i in held) == inside)  # noqa: E731
    return SegmentationData(pick(images, False), pick(maps, False), pick(images, True), pick(maps, True), (),
                            {int(k): v for k, v in names.items()}, {})


def matched_miou(predicted: list[np.ndarray], truth: list[np.ndarray]) -> tuple[float, dict[str, float]]:
    """Mean IoU over the true labels (background included) after one-to-one id matching."""
    mapping = {0: 0, **quality.match_clusters(predicted, truth)}
    pred = np.concatenate([np.vectorize(lambda v: mapping.get(int(v), -1))(p).ravel() for p in predicted])
    true = np.concatenate([t.ravel() for t in truth]).astype(np.int64)
    ious = {int(c): float(((pred == c) & (true == c)).sum() / max(1, ((pred == c) | (true == c)).sum()))
            for c in np.unique(true)}
    return float(np.mean(list(ious.values()))), {str(c): round(v, 3) for c, v in ious.items()}


def measure(root: Path, args: argparse.Namespace, scratch: Path) -> dict:
    settings = SegmentationSettings.for_profile(args.profile)
    device = resolve_device(args.device)
    start = time.perf_counter()
    if args.labels == "true":
        data = true_label_data(root, settings.image_size, settings.seed)
    else:
        ws = Workspace.create(scratch / root.name)
        register_category(ws, root.parent, root.name)
        run_pseudo_labels(ws, root.name, detector="none", segmenter="classic", device=str(device))
        data = load_segmentation_data(ws, root.name, settings.image_size, settings.holdout_fraction, settings.seed)
    labels_s = time.perf_counter() - start
    start = time.perf_counter()
    result = train_segmentation(data, settings, scratch / f"{root.name}_seg", device, resume=False)
    train_s = time.perf_counter() - start
    tests = load_category(root).select("test", "good")
    predicted = predict_labels(result.net, [load_rgb(s.path) for s in tests], settings.image_size)
    truth = [np.asarray(load_rgb(s.component_path))[..., 0] for s in tests]
    miou, per_class = matched_miou(predicted, truth)
    return {"category": root.name, "labels": args.labels, "profile": args.profile, "device": str(device),
            "miou_test_good": round(miou, 4), "iou_per_true_class": per_class,
            "heldout_miou_last_epoch": result.history[-1]["miou"], "n_classes_trained": data.n_classes,
            "label_seconds": round(labels_s, 1), "train_minutes": round(train_s / 60, 2)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.categories or find_categories(args.data):
            report = measure(args.data / name, args, Path(scratch))
            results.append(report)
            print(f"{name:16s} labels {args.labels:6s} mIoU {report['miou_test_good']:.3f} "
                  f"per class {report['iou_per_true_class']}  train {report['train_minutes']:.1f} min", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results}, indent=2))
    return 0 if all(r["miou_test_good"] >= 0.8 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
