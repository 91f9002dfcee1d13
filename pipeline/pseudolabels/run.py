"""Run the pseudo-label stages on a workspace category (SPEC §5 steps 2-5): masks and features
per training image (each cached, written as soon as the image is done), then clusters, label
maps and the reliability split. The CLI, jobs and pages all call ``run_pseudo_labels``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.data.images import load_rgb
from pipeline.data.registered import load_workspace_category
from pipeline.data.samples import DataError, Sample
from pipeline.device import resolve_device, set_determinism
from pipeline.progress import ProgressFn, no_progress
from pipeline.pseudolabels import edits, refresh, store
from pipeline.pseudolabels.settings import PseudoLabelSettings
from pipeline.pseudolabels.surface import SURFACE_MESSAGE, is_surface
from pipeline.pseudolabels.tag_curation import TagChoice, category_tags
from pipeline.workspace import Workspace
from pipeline.workspace.db import now_iso


@dataclass(frozen=True)
class PseudoLabelSummary:
    """What ``run_pseudo_labels`` did.

    Attributes:
        category: the category.
        detector, segmenter: adapter names used (``"none"``: no detector).
        detector_message, segmenter_message: the factory's sentence on what was picked and why.
        tags, background_tags: the prompts used; tags_source: ``"curated"`` or ``"vocabulary"``.
        n_images: training images processed.
        cached_images: images whose masks and features were both reused from the workspace.
        n_components: components clustered (rejected ones excluded).
        cluster_sizes: cluster id -> components; cluster_names: cluster id -> display name.
        dropped: components whose cluster was too small (label 0).
        reliable_fraction: share of the training images in the labelled set ``D_L``.
        clustering: ``"kept"`` (same inputs: the stored, possibly hand-edited clustering) or
            ``"reclustered"``.
        seconds: wall time.
        surface: no separate parts were found (``surface.is_surface``): the methods leave the
            part-based branches out.
    """

    category: str
    detector: str
    segmenter: str
    detector_message: str
    segmenter_message: str
    tags: tuple[str, ...]
    background_tags: tuple[str, ...]
    tags_source: str
    n_images: int
    cached_images: int
    n_components: int
    cluster_sizes: dict[int, int]
    cluster_names: dict[int, str]
    dropped: int
    reliable_fraction: float
    clustering: str
    seconds: float
    surface: bool = False


def with_seed(settings: PseudoLabelSettings, seed: int) -> PseudoLabelSettings:
    """The settings with ``seed`` in every part that has a seed field."""
    parts = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    changed = {name: dataclasses.replace(part, seed=seed) for name, part in parts.items()
               if dataclasses.is_dataclass(part) and "seed" in {f.name for f in dataclasses.fields(part)}}
    if "seed" in parts:
        changed["seed"] = seed
    return dataclasses.replace(settings, **changed)


def seed_of(settings: PseudoLabelSettings) -> int:
    """The seed the settings carry (the first part that has one), 0 if none."""
    for part in (settings, *(getattr(settings, f.name) for f in dataclasses.fields(settings))):
        if isinstance(getattr(part, "seed", None), int):
            return part.seed
    return 0


def adapter_identity(adapter: Any, references: dict | None = None) -> Any:
    """What about an adapter changes its masks: its name, settings and (manual) drawn boxes."""
    if adapter is None:
        return "none"
    settings = getattr(adapter, "settings", None)
    identity: dict[str, Any] = {"name": getattr(adapter, "name", type(adapter).__name__)}
    if dataclasses.is_dataclass(settings):
        identity["settings"] = dataclasses.asdict(settings)
    if identity["name"] == "manual":
        identity["boxes"] = {k: [edits.box_to_dict(b) for b in v] for k, v in (references or {}).items()}
    return identity


def stored_settings(ws: Workspace, category: str) -> PseudoLabelSettings | None:
    """The stage settings of the category's last run or Masks-page edit (None: never stored)."""
    stored = ws.get_setting(edits.SETTINGS, None, category=category)
    return PseudoLabelSettings.from_dict(stored) if stored else None


def format_summary(summary: PseudoLabelSummary) -> list[str]:
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


def run_pseudo_labels(
    ws: Workspace,
    category: str,
    settings: PseudoLabelSettings | None = None,
    detector: str = "auto",
    segmenter: str = "auto",
    device: str = "auto",
    progress: ProgressFn = no_progress,
    report: Callable[[str], None] | None = None,
) -> PseudoLabelSummary:
    """Pseudo-label the category's training images; reuses every stored result whose inputs
    (image bytes, adapters, tags, settings) are unchanged. ``report`` gets one line per adapter
    choice as soon as it is made. Same inputs and seed give identical label maps."""
    from pipeline.pseudolabels.adapters.factory import choose_detector, choose_segmenter

    start = time.perf_counter()
    settings = settings or PseudoLabelSettings()
    samples = load_workspace_category(ws, category).select("train")
    if not samples:
        raise DataError(f"category {category!r} has no training images to pseudo-label")
    torch_device = resolve_device(device)
    set_determinism(seed_of(settings))
    choice = category_tags(ws, category)
    paths = {s.key: s.path for s in samples}
    seg, seg_why = choose_segmenter(segmenter, torch_device, classic_settings=settings.classic)
    references = edits.manual_boxes(ws, category)
    det, det_why = choose_detector(detector, torch_device, references=references, segmenter=seg,
                                   reference_images=lambda key: load_rgb(paths[key]))
    if report is not None:  # said before the long loop, so a user knows at once what runs
        report(f"segmenter: {seg_why}")
        report(f"detector: {det_why}")
    ws.set_setting(edits.SETTINGS, settings.to_dict(), category=category)
    # Without a detector the prompts are unused: curating tags then invalidates no masks.
    prompts = [choice.tags, choice.background] if det is not None else []
    identity = [adapter_identity(det, references), adapter_identity(seg), prompts, settings.fingerprint("masks")]
    extractor = refresh.FeatureExtractor(settings, torch_device)
    cached = 0
    for done, sample in enumerate(samples, start=1):
        cached += _one_image(ws, category, sample, (det, seg), choice, settings, identity, extractor)
        progress("masks and features", done, len(samples))
    keys = [s.key for s in samples]
    clustering, how = refresh.sync_clustering(ws, category, keys, settings, mode="auto")
    progress("clusters", 1, 1)
    reliability = refresh.refresh_outputs(ws, category, keys, settings, clustering, progress)
    labels = np.asarray(clustering.labels)
    summary = PseudoLabelSummary(
        category=category, detector=getattr(det, "name", "none"), segmenter=seg.name,
        detector_message=det_why, segmenter_message=seg_why, tags=choice.tags,
        background_tags=choice.background, tags_source=choice.source, n_images=len(samples),
        cached_images=cached, n_components=len(labels),
        cluster_sizes={cid: int((labels == cid).sum()) for cid in clustering.names},
        cluster_names=dict(clustering.names), dropped=int((labels == 0).sum()),
        reliable_fraction=float(np.mean(reliability.reliable)) if len(reliability.reliable) else 0.0,
        clustering=how, seconds=time.perf_counter() - start, surface=is_surface(ws, category),
    )
    _record(ws, category, summary, settings, paths)
    return summary


def _one_image(ws, category, sample: Sample, adapters, choice: TagChoice, settings, identity, extractor) -> bool:
    """Masks then features of one image, each stored at once; True when both came from the cache."""
    from pipeline.pseudolabels import chain

    loaded: list[np.ndarray] = []

    def image() -> np.ndarray:  # loaded once, and only if a stage has to run
        if not loaded:
            loaded.append(load_rgb(sample.path))
        return loaded[0]

    key = store.cache_key(*identity, image_path=sample.path)
    hit = store.has_components(ws, category, sample.key, key)
    if not hit:
        detector, segmenter = adapters
        components = chain.extract_components(
            image(), sample.key, detector, segmenter, list(choice.tags), list(choice.background), settings.masks
        )
        store.save_components(ws, category, components, key)
    computed = refresh.update_features(ws, category, sample.key, image, extractor, settings)
    return hit and not computed


def _record(ws: Workspace, category: str, summary: PseudoLabelSummary, settings, paths: dict) -> None:
    info = {k: v for k, v in dataclasses.asdict(summary).items() if k not in ("cluster_sizes", "cluster_names")}
    info.update(settings=settings.to_dict(), images={k: str(p) for k, p in paths.items()}, finished_at=now_iso())
    store.write_json(ws, category, "run.json", info)
