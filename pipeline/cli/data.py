"""``synth``, ``demo`` and ``import``: generate data or register it in a workspace.

``synth --help`` and ``synth`` itself must start without torch (``tests/unit/test_layers.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import args as shared
from pipeline.data.importer import IMPORT_LAYOUTS, import_into_workspace, plan_imports
from pipeline.data.samples import DataError
from pipeline.progress import TqdmProgress
from pipeline.workspace import Workspace


def register(sub: shared.Subcommands) -> None:
    """Add ``synth``, ``demo`` and ``import`` to the command parsers ``sub``."""
    p = sub.add_parser("synth", help="generate the synthetic LOCO-layout benchmark")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--categories", nargs="+", help="categories to write (default: all)")
    shared.add_seed(p)
    p.add_argument("--n-train", type=int, default=None, help="good training images per category (validation gets a third)")
    p.add_argument("--n-test", type=int, default=None, help="test images per kind (good, logical, structural)")
    p.add_argument("--size", type=int, default=256, help="image side in px")
    p.set_defaults(handler=synth)

    p = sub.add_parser("demo", help="generate the demo data and fit the instant detector on first use, "
                       "in the demo workspace")
    p.add_argument("--root", type=Path, default=Path("demo"))
    p.add_argument("--no-fit", action="store_true",
                   help="only generate and register the data (fit later on the Train page)")
    shared.add_device(p)
    p.set_defaults(handler=demo)

    p = sub.add_parser("import", help="register data categories in a workspace; prints what was found first")
    shared.add_workspace(p)
    shared.add_data(p, help=None)
    p.add_argument("--categories", nargs="+", help="category names (default: every category found)")
    shared.add_category(p, "name of an image+mask or YOLO set (default: its folder name), "
                        "or one category of a LOCO / plain folder", required=False)
    p.add_argument("--layout", choices=IMPORT_LAYOUTS, default="auto",
                   help="auto (detect), loco, folder (good/ + bad/), masks (images/ + masks/) or yolo "
                   "(images/ + labels/); masks and yolo sets are copied into <workspace>/data in LOCO layout")
    p.set_defaults(handler=import_data)


def synth(args: argparse.Namespace) -> int:
    """Write synthetic LOCO-layout categories; counts left ``None`` keep the generator's defaults."""
    from pipeline.data.synth import CATEGORIES, SynthSettings, generate

    counts: dict[str, int] = {}
    if args.n_train is not None:
        counts.update(n_train=args.n_train, n_validation=max(2, args.n_train // 3))
    if args.n_test is not None:
        counts.update(n_test_good=args.n_test, n_logical=args.n_test, n_structural=args.n_test)
    settings = SynthSettings(out=args.out, categories=tuple(args.categories or CATEGORIES), seed=args.seed,
                             size=args.size, **counts)
    progress = TqdmProgress()
    try:
        roots = generate(settings, progress)
    finally:
        progress.close()
    for root in roots:
        print(f"wrote {root}")
    return 0


def demo(args: argparse.Namespace) -> int:
    """Generate the demo data and fit the demo detector once; a rerun reuses both."""
    from pipeline.demo import DEMO_METHOD, prepare_demo

    progress = TqdmProgress()
    try:
        workspace, generated, fitted = prepare_demo(args.root, progress=progress, fit=not args.no_fit,
                                                    device=args.device)
    finally:
        progress.close()
    made = f"generated {', '.join(generated)}" if generated else "demo data already present"
    if args.no_fit:
        model = "no model fitted (--no-fit)"
    else:
        model = f"fitted {DEMO_METHOD} on {', '.join(fitted)}" if fitted else f"{DEMO_METHOD} models already fitted"
    print(f"{made}; {model}; workspace {workspace.path}")
    return 0


def import_data(args: argparse.Namespace) -> int:
    """Plan the import (printed), then register: LOCO / plain folders in place, others converted."""
    found = plan_imports(args.data, args.layout, args.category, args.categories or ())
    if found.errors:  # nothing is registered when part of the request cannot be
        raise DataError(" ".join(found.errors))
    ws = Workspace.open(args.workspace, create=True)
    for plan in found.plans:
        print(plan.summary())
        import_into_workspace(ws, plan)
        print(f"registered {plan.name}")
    return 0
