"""``train-seg``: train a category's segmentation network on its pseudo-labels, outside a fit
(``pipeline.methods.segmentation.standalone``; runs under torchrun too)."""

from __future__ import annotations

import argparse

from pipeline.cli import args as shared
from pipeline.workspace import Workspace


def register(sub: shared.Subcommands) -> None:
    """Add ``train-seg`` to the command parsers ``sub``."""
    p = sub.add_parser("train-seg", help="train the component segmentation network on a category's pseudo-labels")
    shared.add_workspace(p, shared.EXISTING_WORKSPACE)
    shared.add_category(p, shared.PSEUDO_LABELLED)
    shared.add_profile(p, "quick: CPU-friendly (15 epochs, smaller head); paper: thesis settings (120 epochs)")
    shared.add_device(p)
    shared.add_seed(p)
    p.add_argument("--epochs", type=int, help="override the profile's number of epochs")
    shared.add_resume(p, "pseudo-labels")
    shared.add_confidence_weighting(p)
    p.set_defaults(handler=train_seg)


def train_seg(args: argparse.Namespace) -> int:
    """Train (or resume) the category's segmentation network; the library prints its progress."""
    from pipeline.methods.segmentation.standalone import standalone_settings, train_standalone

    shared.require_positive("--epochs", args.epochs)
    ws = Workspace.open(args.workspace)
    settings = standalone_settings(ws, args.category, args.profile, args.seed, args.epochs, args.confidence_weighting)
    train_standalone(ws, args.category, settings, args.device, restart=args.restart, say=print)
    return 0
