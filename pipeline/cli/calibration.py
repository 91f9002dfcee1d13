"""``label`` (mark images good or bad) and ``calibrate`` (few-shot fusion weights and threshold)."""

from __future__ import annotations

import argparse

from pipeline.cli import args as shared
from pipeline.data.registered import resolve_image_keys
from pipeline.errors import NotReadyError, SettingsError
from pipeline.workspace import IMAGE_LABELS, Workspace


def register(sub: shared.Subcommands) -> None:
    """Add ``label`` and ``calibrate`` to the command parsers ``sub``."""
    p = sub.add_parser("label", help="mark images good or bad (few-shot calibration, instant anomaly keys); "
                                     "without images, list the labelled ones")
    shared.add_workspace(p)
    shared.add_category(p)
    p.add_argument("--as", dest="label", choices=("good", "bad", "logical", "structural", "none"),
                   help="label to give (none removes it)")
    p.add_argument("images", nargs="*", help="image keys (test/logical/000.png) or paths")
    p.set_defaults(handler=label)

    p = sub.add_parser("calibrate", help="fit the fusion weights and a threshold on the images marked bad "
                                         "(needs --min-marked of them; else equal weights stay)")
    shared.add_method_target(p, with_data=False)
    p.add_argument("--min-marked", type=int, default=3, help="fewest marked bad images to calibrate on (default 3)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--apply", action="store_true", help="score with the calibrated weights and threshold from now on")
    action.add_argument("--revert", action="store_true", help="back to equal weights and the 'N flagged' threshold")
    p.set_defaults(handler=calibrate)


def label(args: argparse.Namespace) -> int:
    """Label images (``none`` removes the label); without images, list the labelled ones."""
    from pipeline.evaluation.calibrate import marked_bad_samples

    ws = Workspace.open(args.workspace, create=False)
    if args.images:
        if args.label is None:
            raise SettingsError(f"say which label: --as {'|'.join(IMAGE_LABELS)}|none")
        for key in resolve_image_keys(ws, args.category, args.images):
            ws.set_image_label(args.category, key, None if args.label == "none" else args.label)
    for key, value in ws.image_labels(args.category).items():
        print(f"{value}\t{key}")
    print(f"{len(marked_bad_samples(ws, args.category))} image(s) marked bad in {args.category}")
    return 0


def calibrate(args: argparse.Namespace) -> int:
    """Fit fusion weights on the marked bad images and print them; ``--apply``/``--revert`` switch fusion."""
    from pipeline.evaluation.calibrate import apply_calibration, calibrate_method
    from pipeline.metrics.calibration import CalibrationSettings

    shared.require_positive("--min-marked", args.min_marked)  # with none, it would fit on good images alone
    ws = Workspace.open(args.workspace, create=False)
    if args.revert:
        threshold = apply_calibration(ws, args.category, args.method, on=False)
        print(f"equal-weight fusion restored; threshold {threshold:.4g}")
        return 0
    calibration = calibrate_method(ws, args.category, args.method, CalibrationSettings(min_marked=args.min_marked),
                                   args.device)
    print("\n".join(calibration.summary_lines()))
    if args.apply:
        if calibration.threshold is None:
            raise NotReadyError(calibration.reason)
        threshold = apply_calibration(ws, args.category, args.method, on=True)
        print(f"applied: {calibration.mode} weights, threshold {threshold:.4g}; stored scores re-fused "
              "(re-evaluate to see the test AUROC of both fusions side by side)")
    return 0
