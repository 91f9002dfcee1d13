"""The ``pseudo-labels`` and ``tags`` subcommands. Like ``commands``, each returns the exit code
and lets typed errors propagate to ``__main__`` (one ``error: ...`` line, exit 2)."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.registered import register_category
from pipeline.progress import TqdmProgress
from pipeline.pseudolabels.surface import SURFACE_MESSAGE
from pipeline.workspace import Workspace

SUGGESTION_IMAGES = 3
"""Good training images the taggers look at (tags describe the category, a few images suffice)."""


def pseudo_labels_command(
    data: Path, category: str, workspace: Path, detector: str, segmenter: str, device: str, seed: int | None,
    export: Path | None = None, default_settings: bool = False, assignments: list[str] | None = None,
) -> int:
    from pipeline.pseudolabels.edits import SETTINGS
    from pipeline.pseudolabels.export import export_label_maps
    from pipeline.pseudolabels.run import run_pseudo_labels, with_seed
    from pipeline.pseudolabels.settings import PseudoLabelSettings, with_assignments

    ws = Workspace.open(workspace, create=True)
    register_category(ws, data, category)
    stored = None if default_settings else ws.get_setting(SETTINGS, None, category=category)
    settings = PseudoLabelSettings.from_dict(stored) if stored else PseudoLabelSettings()
    settings = with_assignments(settings, list(assignments or ()))  # before any work: a typo fails fast
    changed = f"; changed: {', '.join(assignments)}" if assignments else ""
    print(f"settings: {'stored in the workspace (Masks page)' if stored else 'defaults'}{changed}")
    if seed is not None:
        settings = with_seed(settings, seed)
    progress = TqdmProgress()
    try:
        summary = run_pseudo_labels(
            ws, category, settings, detector=detector, segmenter=segmenter,
            device=device, progress=progress, report=print,
        )
    finally:
        progress.close()
    for line in format_summary(summary):
        print(line)
    print(confidence_line(ws, category))
    if export is not None:
        written = export_label_maps(ws, category, export)
        print(f"exported {len(written)} label maps (8-bit PNG, 0 = background) -> {export}")
    return 0


def confidence_line(ws: Workspace, category: str) -> str:
    """How typical the new label maps are (IQR-fence confidence) and whether training weighs by it."""
    from pipeline.pseudolabels.confidence import describe, image_confidence, weighting_enabled
    from pipeline.pseudolabels.settings import ConfidenceSettings

    confidence = image_confidence(ws, category)
    if confidence is None:
        return "confidence: no reliability split yet"
    state = "on" if weighting_enabled(ws, category) else "off (fit/train-seg --confidence-weighting to use it)"
    return f"confidence: {describe(confidence.effective, ConfidenceSettings().floor)}; weighting {state}"


def format_summary(summary) -> list[str]:
    """The run summary as printed lines: prompts, components, clusters and sizes, reliable share."""
    tags = ", ".join(summary.tags) or "none"
    background = ", ".join(summary.background_tags) or "none"
    clusters = ", ".join(f"{summary.cluster_names[c]}: {n}" for c, n in summary.cluster_sizes.items()) or "none"
    reliable = round(summary.reliable_fraction * summary.n_images)
    return [
        f"tags ({summary.tags_source}): {tags}; background: {background}",
        f"{summary.n_images} training images ({summary.cached_images} reused from the workspace), "
        f"{summary.n_components} components found ({summary.dropped} in clusters too small to keep)",
        f"{len(summary.cluster_sizes)} clusters ({summary.clustering}): {clusters}",
        f"reliable: {reliable} of {summary.n_images} images ({100 * summary.reliable_fraction:.0f}%); "
        f"done in {summary.seconds:.1f} s",
    ] + ([SURFACE_MESSAGE] if summary.surface else [])


def tags_command(
    workspace: Path, category: str, keep: list[str], drop: list[str], background: list[str],
    imagenet: bool = True, device: str = "auto",
) -> int:
    """Record the given decisions, then list the suggestions with the decision on each."""
    from pipeline.pseudolabels.tag_curation import category_tags, set_tag_status

    ws = Workspace.open(workspace, create=False)
    ws.category(category)  # unknown category: WorkspaceError naming the known ones
    for status, tags in (("keep", keep), ("drop", drop), ("background", background)):
        for tag in tags or ():
            print(f"{set_tag_status(ws, category, tag, status)}: {status}")
    decisions = ws.tags(category)
    suggestions = _suggestions(ws, category, imagenet, device)
    for suggestion in suggestions:
        mark = decisions.get(suggestion.tag, "background?" if suggestion.background else "-")
        print(f"{suggestion.tag:<24} {suggestion.score:5.2f}  {suggestion.source:<22} {mark}")
    for tag in sorted(set(decisions) - {s.tag for s in suggestions}):  # typed by the user
        print(f"{tag:<24} {'':5}  {'user':<22} {decisions[tag]}")
    choice = category_tags(ws, category)
    print(f"next run prompts ({choice.source}): {', '.join(choice.tags) or 'none'}; "
          f"background: {', '.join(choice.background) or 'none'}")
    return 0


def _suggestions(ws: Workspace, category: str, imagenet: bool, device: str):
    from pipeline.data.images import load_rgb
    from pipeline.data.registered import load_workspace_category
    from pipeline.device import resolve_device
    from pipeline.pseudolabels.adapters.factory import choose_taggers
    from pipeline.pseudolabels.tag_curation import suggest_tags

    samples = load_workspace_category(ws, category).select("train")[:SUGGESTION_IMAGES]
    taggers, why = choose_taggers(resolve_device(device), imagenet=imagenet and bool(samples))
    print(f"taggers: {why}")
    return suggest_tags(ws, category, [load_rgb(s.path) for s in samples], taggers)
