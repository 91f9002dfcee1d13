"""``fit``, ``evaluate`` and ``predict``: build a method's model on good images, measure it, use it
(``predict --bundle`` too: a bundle replaces the workspace).

The work happens in ``pipeline.methods.runner``, ``pipeline.evaluation`` and ``pipeline.deploy``;
they load torch, so they are imported by the handlers, not here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli import args as shared
from pipeline.data.registered import register_category
from pipeline.errors import SettingsError
from pipeline.progress import TqdmProgress
from pipeline.workspace import Workspace


def register(sub: shared.Subcommands) -> None:
    """Add ``fit``, ``evaluate`` and ``predict`` to the command parsers ``sub``."""
    p = sub.add_parser("fit", help="fit a method on a category's good images")
    shared.add_method_target(p)
    shared.add_profile(p, "quick: CPU-friendly; paper: thesis settings")
    shared.add_seed(p)
    shared.add_backbone(p, shared.FIT_BACKBONE_HELP)
    shared.add_confidence_weighting(p)
    shared.add_training_settings(p)
    p.set_defaults(handler=fit)

    p = sub.add_parser("evaluate", help="score the test split and write metrics JSON")
    shared.add_method_target(p)
    p.add_argument("--out", type=Path, required=True, help="metrics JSON file to write")
    p.set_defaults(handler=evaluate)

    p = sub.add_parser("predict", help="score images with a fitted method; write heat maps and scores.jsonl")
    shared.add_method_target(p, with_data=False, bundle=True)
    p.add_argument("images", nargs="+", type=Path, help="image files")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--bundle", type=Path, help="a model bundle (export --format bundle); then --workspace and "
                   "--category are not needed")
    p.set_defaults(handler=predict)


def fit(args: argparse.Namespace) -> int:
    """Register the category, fit the method, print what the threshold flags."""
    from pipeline.methods.runner import fit_method

    changes = _training_changes(args.method, args.assignments)  # a typo exits before anything is written
    ws = Workspace.open(args.workspace, create=True)
    register_category(ws, args.data, args.category)
    if args.confidence_weighting is not None:  # a category setting: the segmentation step of the fit reads it
        from pipeline.pseudolabels.confidence import set_weighting

        set_weighting(ws, args.category, args.confidence_weighting)
    progress = TqdmProgress()
    try:
        summary = fit_method(
            ws, args.category, args.method, profile=args.profile, device=args.device, seed=args.seed,
            progress=progress, backbone=args.backbone, settings_changes=changes,
        )
    finally:
        progress.close()
    print(
        f"fitted {args.method} on {args.category}: {summary.n_train} train images in {summary.seconds:.1f} s; "
        f"threshold {summary.threshold:.4g} flags {summary.flagged} of {summary.n_validation} good validation images"
    )
    for note in summary.notes:
        print(note)
    return 0


def _training_changes(method: str, assignments: list[str]) -> dict:
    from pipeline.methods import get_method
    from pipeline.methods.training_settings import check_training_settings, parse_training_settings

    spec = get_method(method)
    return check_training_settings(method, spec.trains, parse_training_settings(assignments))


def evaluate(args: argparse.Namespace) -> int:
    """Score the test split, write the metrics JSON, print the AUROCs and the weakest subtypes."""
    from pipeline.evaluation.evaluate import evaluate_method
    from pipeline.metrics.subtypes import percent, weakest_summary
    from pipeline.workspace.files import atomic_write_json

    ws = Workspace.open(args.workspace, create=False)
    register_category(ws, args.data, args.category)
    progress = TqdmProgress()
    try:
        result = evaluate_method(ws, args.category, args.method, device=args.device, progress=progress)
    finally:
        progress.close()
    atomic_write_json(args.out, result.to_dict())
    auroc = result.auroc
    print(
        f"{args.category} / {args.method}: AUROC logical {percent(auroc.get('logical'))}, structural "
        f"{percent(auroc.get('structural'))}, mean {percent(auroc.get('mean'))} -> {args.out}"
    )
    weakest = weakest_summary(result.subtype_auroc)
    if weakest:
        print(f"  weakest anomaly subtypes: {weakest}")
    return 0


def predict(args: argparse.Namespace) -> int:
    """Heat-map PNG per image plus ``scores.jsonl``, from a workspace model or ``--bundle``."""
    if args.bundle is not None:
        return predict_bundle(args)
    if args.workspace is None or args.category is None:
        raise SettingsError("predict needs --workspace and --category, or --bundle FILE")
    from pipeline.evaluation.verdict import verdict_scale
    from pipeline.methods.runner import load_detector
    from pipeline.metrics.colour_scale import workspace_display_range

    ws = Workspace.open(args.workspace, create=False)
    detector = load_detector(ws, args.category, args.method, args.device)
    display = workspace_display_range(ws, args.category, args.method)
    return write_predictions(detector, args.images, args.out, verdict_scale(ws, args.category, args.method), display)


def write_predictions(detector, images: list[Path], out: Path, scale, display: tuple[float, float],
                      extra: dict | None = None) -> int:
    """Score and write ``images``, printing each row; exit code 1 if any image could not be read
    (those are reported and skipped), else 0."""
    from pipeline.evaluation.predictions import write_predictions as write

    failures = write(detector, images, out, scale, display, extra, on_row=print,
                     on_skip=lambda err: print(f"skipped: {err}", file=sys.stderr))
    if failures:
        print(f"error: {failures} of {len(images)} images could not be read", file=sys.stderr)
        return 1
    return 0


def predict_bundle(args: argparse.Namespace) -> int:
    """``predict --bundle``: the same files as ``predict`` (heat maps + ``scores.jsonl``), no workspace."""
    from pipeline.deploy.bundle import load_bundle_detector, read_bundle
    from pipeline.device import resolve_device
    from pipeline.evaluation.verdict import VerdictScale

    bundle = read_bundle(args.bundle)  # refuses a tampered bundle before anything is built from it
    detector = load_bundle_detector(bundle, resolve_device(args.device))
    return write_predictions(detector, args.images, args.out, VerdictScale(bundle.threshold, bundle.score_spread),
                             tuple(bundle.display_range), extra={"bundle": str(args.bundle)})
