"""``train-lgst``: train a category's LGST students into the method folder ``fit`` reuses
(``pipeline.methods.lgst_training``; runs under torchrun too)."""

from __future__ import annotations

import argparse

from pipeline.cli import args as shared
from pipeline.methods import lgst_method_names
from pipeline.workspace import Workspace


def register(sub: shared.Subcommands) -> None:
    """Add ``train-lgst`` to the command parsers ``sub``."""
    p = sub.add_parser("train-lgst", help="train a category's LGST students (local + global) into the method folder fit reuses")
    shared.add_workspace(p, shared.EXISTING_WORKSPACE)
    shared.add_category(p, shared.PSEUDO_LABELLED)
    p.add_argument("--method", choices=lgst_method_names(), default="aecsad",
                   help="aecsad: global student with self-attention; csad: the plain CNN one (default: aecsad)")
    shared.add_profile(p, "quick: CPU-friendly (narrow students, up to 2300 steps in 22 min of training); "
                          "paper: thesis settings (70000 steps)")
    shared.add_device(p)
    shared.add_seed(p)
    p.add_argument("--steps", type=int, help="override the profile's number of steps (fit --set lgst.steps=N reuses them; a plain fit trains its own)")
    shared.add_backbone(p)
    shared.add_resume(p, "data")
    p.set_defaults(handler=train_lgst)


def train_lgst(args: argparse.Namespace) -> int:
    """Train (or resume) the category's LGST students; one process, or one rank under torchrun."""
    from pipeline.methods.lgst_training import lgst_inputs, train_standalone

    ws = Workspace.open(args.workspace)
    inputs = lgst_inputs(ws, args.category, args.method, args.profile, args.seed, args.backbone, args.steps)
    train_standalone(inputs, args.method, args.profile, args.device, restart=args.restart, say=print)
    return 0
