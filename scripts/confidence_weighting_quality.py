"""Measure confidence weighting (SPEC §9, CoZAD) against the hard D_L/D_U split on the synthetic
benchmark, with a share of the pseudo-label maps deliberately broken.

Per category: the offline pseudo-label chain (default settings, no detector, classic segmenter,
as ``scripts/segmentation_quality.py``); then a seeded ``--corrupt`` share of the training maps is
broken the way a pseudo-labeller fails (``wipe``: one to all part classes painted as background;
``swap``: the part class ids permuted; ``merge``: every part painted as one class), and the
reliability split is redone on the broken maps (HDBSCAN sees them, as it would in a real run).
Then ``fit --method histogram`` twice on the same maps, hard split vs confidence weighting, with
the same profile and seed, and ``evaluate`` after each. Reported per variant: mean IoU of the
predicted ``test/good`` maps against the true component maps (Hungarian-matched ids, the code of
``segmentation_quality.py``), the fused image AUROC of the histogram method (logical,
structural, mean), how the corrupted images were used (in the supervised set, their weights),
and the minutes. The JSON is rewritten after every category, so a partial run leaves results.

    .venv/bin/python -m pipeline synth --out /tmp/plsynth
    OMP_NUM_THREADS=1 .venv/bin/python scripts/confidence_weighting_quality.py --data /tmp/plsynth --out cw.json
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script's mIoU code

from segmentation_quality import METHOD, test_good_miou  # noqa: E402

from pipeline.data.discover import find_categories  # noqa: E402
from pipeline.data.registered import register_category  # noqa: E402
from pipeline.evaluation.evaluate import evaluate_method  # noqa: E402
from pipeline.methods.runner import fit_method  # noqa: E402
from pipeline.methods.segmentation.checkpoint import load_checkpoint  # noqa: E402
from pipeline.methods.segmentation.data import load_segmentation_data  # noqa: E402
from pipeline.methods.segmentation.settings import SegmentationSettings  # noqa: E402
from pipeline.methods.segmentation.train import CHECKPOINT  # noqa: E402
from pipeline.pseudolabels import confidence, store  # noqa: E402
from pipeline.pseudolabels.reliability import split_reliable  # noqa: E402
from pipeline.pseudolabels.run import run_pseudo_labels  # noqa: E402
from pipeline.pseudolabels.settings import PseudoLabelSettings  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402
from pipeline.workspace.files import atomic_write_json  # noqa: E402

CORRUPTIONS = ("wipe", "swap", "merge")
VARIANTS = ("hard", "weighted")
MARKER = "corrupted.json"
"""In the pseudo-label folder: which maps were broken, so a rerun on a kept workspace reuses them."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic data root (python -m pipeline synth)")
    parser.add_argument("--categories", nargs="+", help="categories (default: all found)")
    parser.add_argument("--corrupt", type=float, default=0.2, help="share of training maps to break (default 0.2)")
    parser.add_argument("--profile", choices=("quick", "paper"), default="quick")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0, help="seeds the corruption and the fits")
    parser.add_argument("--workspace", type=Path, help="keep the workspaces here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    return parser.parse_args(argv)


def corrupt_map(label_map: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A broken copy of ``label_map`` (0 = background): ``wipe`` paints 1..all present part classes
    as background, ``swap`` permutes the present part ids (a derangement when there are two or
    more), ``merge`` paints every part as one of the present classes."""
    out = np.array(label_map, np.uint8)
    present = [int(c) for c in np.unique(out) if c != 0]
    if not present:
        return out
    if kind == "wipe":
        gone = rng.choice(present, size=int(rng.integers(1, len(present) + 1)), replace=False)
        out[np.isin(out, gone)] = 0
    elif kind == "swap":
        cycle = rng.permutation(present)  # each id takes the next one's place: no id stays
        lookup = np.arange(256, dtype=np.uint8)
        lookup[cycle] = np.roll(cycle, -1)
        out = lookup[out]
    elif kind == "merge":
        out[out > 0] = int(rng.choice(present))
    else:
        raise ValueError(f"unknown corruption {kind!r}; choose one of {CORRUPTIONS}")
    return out


def corrupt_category(ws: Workspace, category: str, share: float, seed: int) -> dict[str, str]:
    """Break ``share`` of the stored maps (seeded) and redo the split on them; returns key -> kind.
    A workspace broken before (``MARKER``) is left as it is."""
    done = store.read_json(ws, category, MARKER)
    if done:
        return done
    split = store.load_reliability(ws, category)
    keys = list(split.image_keys)
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(keys), size=int(round(share * len(keys))), replace=False).tolist())
    kinds = {keys[i]: CORRUPTIONS[n % len(CORRUPTIONS)] for n, i in enumerate(picked)}
    maps = []
    for key in keys:
        label_map = store.load_label_map(ws, category, key)
        if key in kinds:
            label_map = corrupt_map(label_map, kinds[key], rng)
            store.save_label_map(ws, category, key, label_map)
        maps.append(label_map)
    n_classes = len(store.load_state(ws, category).cluster_names)
    redone = split_reliable(maps, keys, n_classes, PseudoLabelSettings().reliability)
    store.save_reliability(ws, category, redone, store.reliability_inputs(ws, category) or "")
    store.write_json(ws, category, MARKER, kinds)
    return kinds


def usage(ws: Workspace, category: str, variant: str, corrupted: dict[str, str], args: argparse.Namespace) -> dict:
    """How the variant's training data used the clean and the corrupted images (32 px: only the keys matter)."""
    weighted = variant == "weighted"
    settings = SegmentationSettings.for_profile(args.profile, seed=args.seed, confidence_weighting=weighted)
    data = load_segmentation_data(ws, category, 32, settings.holdout_fraction, args.seed, settings.active_confidence)
    weights = dict(zip(data.keys["train"], data.train_weights or [1.0] * len(data.keys["train"])))
    bad = list(corrupted)
    return {
        "n_train": len(data.keys["train"]), "n_holdout": len(data.keys["holdout"]),
        "n_unlabelled": len(data.keys["unlabelled"]),
        "corrupted_supervised": sum(k in weights for k in bad),
        "corrupted_in_holdout": sum(k in data.keys["holdout"] for k in bad),
        "corrupted_weight_mean": _mean([weights[k] for k in bad if k in weights]),
        "clean_weight_mean": _mean([w for k, w in weights.items() if k not in corrupted]),
    }


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def fit_variant(ws: Workspace, category: str, variant: str, args: argparse.Namespace, corrupted: dict) -> dict:
    confidence.set_weighting(ws, category, variant == "weighted")
    record = {"variant": variant, **usage(ws, category, variant, corrupted, args)}
    fit = fit_method(ws, category, METHOD, profile=args.profile, device=args.device, seed=args.seed)
    history = load_checkpoint(ws.method_dir(category, METHOD) / CHECKPOINT).history
    evaluation = evaluate_method(ws, category, METHOD, device=args.device, save_maps=False)
    miou, per_class = test_good_miou(ws, category, args.device)
    return {**record, "miou_test_good": round(miou, 4), "iou_per_true_class": per_class,
            "heldout_miou_last_epoch": history[-1]["miou"], "auroc": evaluation.auroc,
            "fit_minutes": round(fit.seconds / 60, 2)}


def confidence_of_corrupted(ws: Workspace, category: str, corrupted: dict[str, str]) -> dict:
    """The IQR confidence and HDBSCAN decision of the corrupted vs the clean images."""
    found = confidence.image_confidence(ws, category)
    split = store.load_reliability(ws, category)
    bad = np.array([k in corrupted for k in found.image_keys])
    return {
        "confidence_corrupted": [round(float(v), 3) for v in found.automatic[bad]],
        "confidence_clean_mean": _mean(found.automatic[~bad].tolist()),
        "clean_below_1": int((found.automatic[~bad] < 1 - 1e-9).sum()),
        "corrupted_reliable_hdbscan": int(split.reliable[bad].sum()), "n_corrupted": int(bad.sum()),
        "distribution": confidence.describe(found.automatic, confidence.ConfidenceSettings().floor),
    }


def measure(root: Path, args: argparse.Namespace, scratch: Path) -> dict:
    ws = Workspace.open(scratch / f"{root.name}_confidence", create=True)
    register_category(ws, root.parent, root.name)
    start = time.perf_counter()
    if not store.load_state(ws, root.name).done:
        run_pseudo_labels(ws, root.name, detector="none", segmenter="classic", device=args.device)
    corrupted = corrupt_category(ws, root.name, args.corrupt, args.seed)
    label_minutes = (time.perf_counter() - start) / 60
    report = {"category": root.name, "profile": args.profile, "corrupt_share": args.corrupt,
              "corrupted": corrupted, **confidence_of_corrupted(ws, root.name, corrupted),
              "label_minutes": round(label_minutes, 2)}
    for variant in VARIANTS:
        report[variant] = fit_variant(ws, root.name, variant, args, corrupted)
    return report


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def print_table(results: list[dict]) -> None:
    print(f"{'category':16s} {'variant':8s} {'mIoU':>6s} {'logical':>8s} {'struct':>7s} {'mean':>6s} "
          f"{'bad sup':>7s} {'bad w':>6s} {'min':>5s}")
    for r in results:
        for variant in VARIANTS:
            v = r[variant]
            print(f"{r['category']:16s} {variant:8s} {v['miou_test_good']:6.3f} {_fmt(v['auroc']['logical']):>8s} "
                  f"{_fmt(v['auroc']['structural']):>7s} {_fmt(v['auroc']['mean']):>6s} "
                  f"{v['corrupted_supervised']:>3d}/{r['n_corrupted']:<3d} {_fmt(v['corrupted_weight_mean']):>6s} "
                  f"{v['fit_minutes']:5.1f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)  # 2 threads on a shared 2-core box are slower than 1
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = args.workspace or Path(tmp)
        for name in args.categories or find_categories(args.data):
            results.append(measure(args.data / name, args, scratch))
            print(json.dumps(results[-1]), flush=True)
            atomic_write_json(args.out, {"results": results})
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
