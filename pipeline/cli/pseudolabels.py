"""``pseudo-labels`` and ``tags``: the masks, clusters and label maps of a category, and the tags
its detector is prompted with. The stages load torch models: imported by the handlers."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import args as shared
from pipeline.data.registered import register_category
from pipeline.progress import TqdmProgress
from pipeline.workspace import Workspace


def register(sub: shared.Subcommands) -> None:
    """Add ``pseudo-labels`` and ``tags`` to the command parsers ``sub``."""
    p = sub.add_parser("pseudo-labels", help="pseudo-label a category's training images: masks, clusters, label maps")
    shared.add_data(p)
    shared.add_category(p, shared.CATEGORY_HELP)
    shared.add_workspace(p, "workspace folder (created if missing)")
    p.add_argument("--detector", choices=("auto", "groundingdino", "manual", "none"), default="auto",
                   help="auto: GroundingDINO when its weights are found, else boxes drawn on the Masks page, else none")
    p.add_argument("--segmenter", choices=("auto", "sam", "classic"), default="auto",
                   help="auto: SAM when its weights are found, else classical region proposals")
    shared.add_device(p)
    p.add_argument("--seed", type=int, default=None,
                   help="seeds the feature projection and the clustering (default: the stored settings' seed, else 0)")
    p.add_argument("--default-settings", action="store_true",
                   help="use the default stage settings, not those stored in the workspace by the Masks page")
    shared.add_assignments(p, "change one stage setting for this run and store it for the next (repeatable), e.g. "
                              "classic.refine_iterations=2 or clusters.bandwidth_quantile=0.4")
    p.add_argument("--export", type=Path, help="also write each training image's label map (8-bit PNG) here")
    p.set_defaults(handler=pseudo_labels)

    p = sub.add_parser("tags", help="list tag suggestions of a category and keep/drop/mark tags as background")
    shared.add_workspace(p, shared.EXISTING_WORKSPACE)
    shared.add_category(p, "a category registered in it (fit, import or pseudo-labels)")
    p.add_argument("--keep", nargs="+", default=[], metavar="TAG", help="tags naming parts")
    p.add_argument("--drop", nargs="+", default=[], metavar="TAG", help="tags to ignore")
    p.add_argument("--background", nargs="+", default=[], metavar="TAG", help="tags naming background")
    p.add_argument("--no-imagenet", action="store_true", help="skip the embedded classifier's ImageNet suggestions")
    shared.add_device(p, help=None)
    p.set_defaults(handler=tags)


def pseudo_labels(args: argparse.Namespace) -> int:
    """Run the stages with the stored (or default) settings changed by ``--set``; print the summary."""
    from pipeline.pseudolabels.confidence import confidence_line
    from pipeline.pseudolabels.export import export_label_maps
    from pipeline.pseudolabels.run import format_summary, run_pseudo_labels, stored_settings, with_seed
    from pipeline.pseudolabels.settings import PseudoLabelSettings, with_assignments

    ws = Workspace.open(args.workspace, create=True)
    register_category(ws, args.data, args.category)
    stored = None if args.default_settings else stored_settings(ws, args.category)
    settings = with_assignments(stored or PseudoLabelSettings(), list(args.assignments))  # a typo fails fast
    changed = f"; changed: {', '.join(args.assignments)}" if args.assignments else ""
    print(f"settings: {'stored in the workspace (Masks page)' if stored else 'defaults'}{changed}")
    if args.seed is not None:
        settings = with_seed(settings, args.seed)
    progress = TqdmProgress()
    try:
        summary = run_pseudo_labels(ws, args.category, settings, detector=args.detector, segmenter=args.segmenter,
                                    device=args.device, progress=progress, report=print)
    finally:
        progress.close()
    for line in format_summary(summary):
        print(line)
    print(confidence_line(ws, args.category))
    if args.export is not None:
        written = export_label_maps(ws, args.category, args.export)
        print(f"exported {len(written)} label maps (8-bit PNG, 0 = background) -> {args.export}")
    return 0


def tags(args: argparse.Namespace) -> int:
    """Record the given decisions, then list the suggestions with the decision on each."""
    from pipeline.data.registered import load_workspace_category
    from pipeline.device import resolve_device
    from pipeline.pseudolabels.tag_curation import (
        category_tags, set_tag_status, suggest_category_tags, suggestion_samples,
    )

    ws = Workspace.open(args.workspace, create=False)
    ws.category(args.category)  # unknown category: WorkspaceError naming the known ones
    for status, names in (("keep", args.keep), ("drop", args.drop), ("background", args.background)):
        for tag in names:
            print(f"{set_tag_status(ws, args.category, tag, status)}: {status}")
    decisions = ws.tags(args.category)
    samples = suggestion_samples(load_workspace_category(ws, args.category).select("train"))
    suggestions = suggest_category_tags(ws, args.category, samples, resolve_device(args.device),
                                        imagenet=not args.no_imagenet,
                                        on_taggers=lambda why: print(f"taggers: {why}")).suggestions
    for suggestion in suggestions:
        mark = decisions.get(suggestion.tag, "background?" if suggestion.background else "-")
        print(f"{suggestion.tag:<24} {suggestion.score:5.2f}  {suggestion.source:<22} {mark}")
    for tag in sorted(set(decisions) - {s.tag for s in suggestions}):  # typed by the user
        print(f"{tag:<24} {'':5}  {'user':<22} {decisions[tag]}")
    choice = category_tags(ws, args.category)
    print(f"next run prompts ({choice.source}): {', '.join(choice.tags) or 'none'}; "
          f"background: {', '.join(choice.background) or 'none'}")
    return 0
