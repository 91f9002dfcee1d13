"""Measure the offline pseudo-label chain against the synthetic benchmark's true component maps.

For each category: the classical segmenter with no detector (background from the image border),
the embedded EfficientNet-Lite0 features, MeanShift, the label maps and the reliability split on
``train/good``; then the foreground adjusted Rand index against the true maps, the cluster count
against the true class count, the reliable fraction and the seconds per stage.

    .venv/bin/python -m pipeline synth --out /tmp/plsynth
    .venv/bin/python scripts/pseudo_label_quality.py --data /tmp/plsynth --out pl_quality.json
    .venv/bin/python scripts/pseudo_label_quality.py --data /tmp/plsynth --categories bottle \\
        --set features.mask_fill=black --set clusters.bandwidth_quantile=0.2 --out try.json

Only ``train/good`` is read (never the test split). ``--set part.field=value`` changes one
setting (value parsed as JSON, else taken as text), for measuring alternatives.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pipeline.data.discover import find_categories, load_category  # noqa: E402
from pipeline.data.images import load_rgb  # noqa: E402
from pipeline.models.backbones import build_backbone, choose_backbone  # noqa: E402
from pipeline.pseudolabels import chain, clustering, features, quality, reliability  # noqa: E402
from pipeline.pseudolabels.adapters.base import Box  # noqa: E402
from pipeline.pseudolabels.adapters.classic import ClassicSegmenter  # noqa: E402
from pipeline.pseudolabels.adapters.manual_boxes import ManualBoxDetector  # noqa: E402
from pipeline.pseudolabels.settings import PseudoLabelSettings, with_assignments  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic data root (python -m pipeline synth)")
    parser.add_argument("--categories", nargs="+", help="categories to measure (default: all found)")
    parser.add_argument("--n", type=int, default=None, help="use the first N train/good images")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--set", action="append", default=[], metavar="PART.FIELD=VALUE",
                        help="change one setting, e.g. clusters.bandwidth_quantile=0.2")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--draw", nargs="+", default=[], metavar="CLASS",
                        help="simulate a user of the manual detector: boxes around every part of these true "
                             "classes (names from synth_info.json, e.g. label) on the first --references images, "
                             "tagged with the class name and propagated to the others")
    parser.add_argument("--references", type=int, default=2, help="images the simulated user draws on (default: 2)")
    return parser.parse_args(argv)


def with_overrides(settings: PseudoLabelSettings, assignments: list[str]) -> PseudoLabelSettings:
    """``settings`` with each ``part.field=value`` applied (``settings.with_assignments``)."""
    try:
        return with_assignments(settings, assignments)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def drawn_boxes(root: Path, samples: list, classes: list[str], references: int) -> dict[str, list[Box]]:
    """The boxes a careful user would draw: one per connected part of each named true class, on
    the first ``references`` images, tagged with the class name."""
    from scipy import ndimage

    names = json.loads((root / "synth_info.json").read_text()).get("classes", {})
    ids = {name: int(k) for k, name in names.items()}
    unknown = sorted(set(classes) - set(ids))
    if unknown:
        raise SystemExit(f"{root.name}: no class {', '.join(unknown)}; classes: {', '.join(ids)}")
    drawn = {}
    for sample in samples[:references]:
        truth = np.asarray(load_rgb(sample.component_path))[..., 0]
        boxes = []
        for name in classes:
            parts, _ = ndimage.label(truth == ids[name])
            for ys, xs in ndimage.find_objects(parts):
                boxes.append(Box(float(xs.start), float(ys.start), float(xs.stop), float(ys.stop), name))
        drawn[sample.key] = boxes
    return drawn


def measure_category(root: Path, settings: PseudoLabelSettings, n: int | None, backbone,
                     draw: list[str] = (), references: int = 2) -> dict:
    """Run the chain on ``root``'s train/good images and score it against the true maps."""
    samples = load_category(root).select("train", "good")[:n]
    if not samples or any(s.component_path is None for s in samples):
        raise SystemExit(f"{root}: needs train/good images with true component maps (synthetic data)")
    segmenter = ClassicSegmenter(settings.classic)
    detector, tags = None, list(draw)
    if draw:
        by_key = {s.key: s for s in samples}
        detector = ManualBoxDetector(drawn_boxes(root, samples, tags, references), segmenter,
                                     reference_images=lambda key: load_rgb(by_key[key].path))
    seconds = {"masks": 0.0, "features": 0.0}
    comps, rows, keys, ids, colours = [], [], [], [], []
    for sample in samples:
        image = load_rgb(sample.path)
        start = time.perf_counter()
        found = chain.extract_components(image, sample.key, detector, segmenter, tags, [], settings.masks)
        seconds["masks"] += time.perf_counter() - start
        start = time.perf_counter()
        rows.append(features.component_features(image, found, backbone, settings.features, "cpu"))
        colours.append(features.component_colours(image, found))
        seconds["features"] += time.perf_counter() - start
        comps.append(found)
        keys += [sample.key] * found.count
        ids.append(np.arange(1, found.count + 1))
    start = time.perf_counter()
    matrix = np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
    result = clustering.cluster_components(matrix, keys, np.concatenate(ids), len(samples), settings.clusters,
                                           colours=np.concatenate(colours))
    maps = [clustering.paint_label_map(c, result) for c in comps]
    seconds["clusters"] = time.perf_counter() - start
    start = time.perf_counter()
    split = reliability.split_reliable(maps, [s.key for s in samples], result.n_clusters, settings.reliability)
    seconds["reliability"] = time.perf_counter() - start
    truth = [np.asarray(load_rgb(s.component_path))[..., 0] for s in samples]
    report = _report(root, samples, maps, truth, result, split, seconds)
    report["oracle_ari"] = quality.foreground_ari([oracle_map(c.instances, t) for c, t in zip(comps, truth)], truth)
    return report


def oracle_map(instances: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each found component painted with its majority true class: the ARI the segmentation
    allows with a perfect clustering, which tells segmentation errors from clustering ones."""
    both = (instances > 0) & (truth > 0)
    table = np.zeros((int(instances.max(initial=0)) + 1, int(truth.max(initial=0)) + 1), np.int64)
    np.add.at(table, (instances[both], truth[both]), 1)
    lookup = np.where(table.sum(1) > 0, table.argmax(1), 0)
    return lookup[instances]


def _report(root, samples, maps, truth, result, split, seconds) -> dict:
    info = json.loads((root / "synth_info.json").read_text()) if (root / "synth_info.json").is_file() else {}
    labels = np.asarray(result.labels)
    per_image = [quality.foreground_ari([p], [t]) for p, t in zip(maps, truth)]
    seconds["total"] = sum(seconds.values())
    true_classes = len(info.get("classes", {})) or quality.count_classes(truth)
    return {
        "category": root.name,
        "n_images": len(samples),
        "ari": quality.foreground_ari(maps, truth),
        "mean_image_ari": float(np.nanmean(per_image)),
        "clusters": result.n_clusters,
        "true_classes": true_classes,
        "clusters_ok": abs(result.n_clusters - true_classes) <= 1,
        "components_per_image": len(labels) / len(samples),
        "cluster_sizes": {int(c): int((labels == c).sum()) for c in result.names},
        "dropped_components": int((labels == 0).sum()),
        "matching": {str(k): info.get("classes", {}).get(str(v), v)
                     for k, v in quality.match_clusters(maps, truth).items()},
        "reliable_fraction": float(np.mean(split.reliable)),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = with_overrides(PseudoLabelSettings(), args.set)
    names = args.categories or find_categories(args.data)
    backbone = build_backbone(choose_backbone(settings.features.backbone))
    results = []
    for name in names:
        report = measure_category(args.data / name, settings, args.n, backbone, args.draw, args.references)
        results.append(report)
        print(f"{name:16s} ARI {report['ari']:.3f} (per image {report['mean_image_ari']:.3f}, "
              f"oracle {report['oracle_ari']:.3f})  "
              f"clusters {report['clusters']} vs {report['true_classes']} true  "
              f"reliable {report['reliable_fraction']:.2f}  {report['seconds']['total']:.1f} s  "
              f"sizes {report['cluster_sizes']}  matched {report['matching']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    drawn = {"classes": args.draw, "references": args.references} if args.draw else None
    args.out.write_text(json.dumps({"settings": settings.to_dict(), "drawn_boxes": drawn, "categories": results}, indent=2))
    return 0 if all(r["ari"] >= 0.8 and r["clusters_ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
