"""Masks: build the component masks and clusters of a category (AeCSAD steps 2-5), then review
them image by image: reject or restore components, draw or erase regions, draw boxes for the
manual detector. Every edit is stored in the workspace at once (``pipeline.pseudolabels.curation``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import streamlit as st
import torch

from app import drawing, loaders
from app.navigation import ensure_frame
from app.state import require_category, require_workspace
from app.widgets import StreamlitProgress
from pipeline.data.samples import DataError, Sample
from pipeline.device import DeviceError
from pipeline.models.weights import IncompatibleWeightsError, MissingWeightsError
from pipeline.pseudolabels import curation, edits, render, store
from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.adapters.factory import DETECTORS, SEGMENTERS, model_unavailable
from pipeline.pseudolabels.run import format_summary, run_pseudo_labels, seed_of, stored_settings, with_seed
from pipeline.pseudolabels.settings import ClassicSettings, ClusterSettings, MaskSettings, PseudoLabelSettings
from pipeline.pseudolabels.surface import SURFACE_MESSAGE, is_surface
from pipeline.pseudolabels.tag_curation import category_tags
from pipeline.workspace import Workspace

DETECTOR_LABELS = {
    "auto": "auto: GroundingDINO if installed, else your drawn boxes, else none",
    "groundingdino": "GroundingDINO (prompted with the kept tags)",
    "manual": "manual boxes (drawn below, carried over to the other images)",
    "none": "none: automatic proposals only",
}
SEGMENTER_LABELS = {"auto": "auto: SAM if installed, else classic", "sam": "SAM",
                    "classic": "classic (offline region proposals)"}
PICK_KEY = "masks_pick"
# (category, "success" | "error", text): the outcome of the last action, shown after a rerun.
MESSAGE_KEY = "masks_message"
# Shown as a message, not a traceback: bad data, missing or wrong weights, a model package missing,
# and torch's RuntimeErrors (out of memory on the GPU); finished images stay cached for the retry.
RUN_ERRORS = (DataError, ValueError, MissingWeightsError, IncompatibleWeightsError, DeviceError, ImportError, RuntimeError)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What the build button runs with."""

    settings: PseudoLabelSettings
    detector: str
    segmenter: str
    device: str


def _say(category: str, kind: str, text: str) -> None:
    st.session_state[MESSAGE_KEY] = (category, kind, text)


def _mask_settings(base: MaskSettings, category: str) -> MaskSettings:
    """The mask filters users tune most; the others keep their stored values."""
    k = f"::{category}"
    c1, c2 = st.columns(2)
    background = c1.slider("Background share that drops a mask", 0.5, 1.0, float(base.background_overlap), 0.01,
                           key="masks_bg" + k, help="A proposal with at least this share of its pixels in the "
                           "background is dropped (SPEC: 0.95).")
    covered = c2.slider("Covered share that drops a mask", 0.5, 1.0, float(base.covered_overlap), 0.01,
                        key="masks_covered" + k, help="A mask with at least this share of its pixels already "
                        "covered by kept masks is dropped (SPEC: 0.9).")
    largest = c1.slider("Largest part (share of the image)", 0.05, 1.0, float(base.max_area_fraction), 0.01,
                        key="masks_largest" + k, help="A piece covering more of the image is a support (table, "
                        "plate): it is dropped and counted as background. 1 keeps everything.")
    min_area = c2.number_input("Smallest piece (pixels at 256 px)", 0, 100_000, int(base.min_area), key="masks_min" + k,
                               help="Connected pieces of at most this many pixels are dropped; counted on a "
                               f"{base.reference_side}×{base.reference_side} image and scaled with the image size.")
    fill = c1.number_input("Fill distance (pixels at 256 px)", 0.0, 100.0, float(base.fill_distance), 1.0,
                           key="masks_fill" + k, help="Unlabelled pixels (dropped crumbs, edge strips) join the "
                           "nearest component within this distance; 0 leaves them unlabelled.")
    return dataclasses.replace(base, background_overlap=background, covered_overlap=covered,
                               max_area_fraction=largest, min_area=int(min_area), fill_distance=float(fill))


def _cluster_settings(base: ClusterSettings, category: str) -> ClusterSettings:
    """The two clustering knobs that decide how many clusters come out."""
    k = f"::{category}"
    c1, c2 = st.columns(2)
    quantile = c1.slider("Cluster width (bandwidth quantile)", 0.05, 0.6, float(base.bandwidth_quantile), 0.01,
                         key="masks_bw" + k, help="MeanShift's bandwidth is this quantile of the distances between "
                         "component features: lower gives more, tighter clusters (one part type split in two); "
                         "higher merges part types. Merge or split single clusters on the Clusters page.")
    smallest = c2.slider("Smallest cluster (share of the images)", 0.0, 1.0, float(base.min_cluster_fraction), 0.05,
                         key="masks_mincl" + k, help="Clusters with fewer members than this share of the image "
                         "count are dropped: a real part type occurs in most images, a stray segment in few.")
    return dataclasses.replace(base, bandwidth_quantile=float(quantile), min_cluster_fraction=float(smallest))


def _region_settings(base: ClassicSettings, category: str) -> ClassicSettings:
    """The classical segmenter's edge handling, which decides how thin parts (pins, wires) survive."""
    k = f"::{category}"
    c1, c2 = st.columns(2)
    passes = c1.number_input("Edge refinement passes (classical segmenter)", 0, 10, int(base.refine_iterations),
                             key="masks_refine" + k, help="Passes that hand each pixel on a region edge to the "
                             "neighbouring region of the nearer colour. Thin parts keep their true outline, and "
                             "the clusters change: check them after a build. Measured on the synthetic set: "
                             "pin_tray 0.75 → 0.84 agreement with 2 passes and cluster width 0.4; "
                             "cable_connector 0.92 → 0.72 (the connector's ears become a cluster).")
    thinnest = c2.number_input("Thinnest region kept (pixels)", 0.0, 20.0, float(base.min_thickness), 0.5,
                               key="masks_thin" + k, help="Regions thinner than this (largest inscribed "
                               "radius) are edge strips and merge into the neighbour of the nearest colour; "
                               "lower keeps thinner parts as parts of their own. 0 keeps every strip.")
    return dataclasses.replace(base, refine_iterations=int(passes), min_thickness=float(thinnest))


def _availability() -> str:
    dino = model_unavailable("groundingdino") or model_unavailable("groundingdino_text_encoder")
    sam = model_unavailable("sam_vit_b")
    return (f"GroundingDINO: {dino or 'available'}. SAM: {sam or 'available'}. "
            "`python -m pipeline doctor` says where the weights go.")


def _run_config(ws: Workspace, category: str) -> RunConfig:
    base = stored_settings(ws, category) or PseudoLabelSettings()
    with st.expander("Settings (start from the last build's)"):
        c1, c2, c3 = st.columns(3)
        detector = c1.selectbox("Detector", DETECTORS, format_func=DETECTOR_LABELS.get, key="masks_detector")
        segmenter = c2.selectbox("Segmenter", SEGMENTERS, format_func=SEGMENTER_LABELS.get, key="masks_segmenter")
        devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        device = c3.selectbox("Device", devices, key="masks_device")
        st.caption(_availability())
        masks = _mask_settings(base.masks, category)
        clusters = _cluster_settings(base.clusters, category)
        classic = _region_settings(base.classic, category)
        seed = st.number_input("Seed (feature projection, clustering)", 0, 2**31 - 1, seed_of(base),
                               key=f"masks_seed::{category}")
    settings = with_seed(dataclasses.replace(base, masks=masks, clusters=clusters, classic=classic), int(seed))
    return RunConfig(settings, detector, segmenter, device)


def _build(ws: Workspace, category: str, config: RunConfig) -> None:
    progress, lines = StreamlitProgress(), []
    try:
        summary = run_pseudo_labels(ws, category, config.settings, detector=config.detector,
                                    segmenter=config.segmenter, device=config.device, progress=progress,
                                    report=lines.append)
    except RUN_ERRORS as err:
        _say(category, "error", f"Building masks failed: {err}")
        return
    finally:
        progress.done()
    _say(category, "success", "  \n".join(format_summary(summary) + lines))


def _summary(ws: Workspace, state: store.PseudoLabelState) -> None:
    run = state.run
    cols = st.columns(4)
    cols[0].metric("Images", run.get("n_images", len(state.components)))
    cols[1].metric("Components", state.n_components)
    cols[2].metric("Clusters", len(state.cluster_names))
    cols[3].metric("Reliable (D_L)", f"{len(state.reliable)} of {len(state.reliable) + len(state.unreliable)}")
    st.caption(f"Detector: {run.get('detector_message', '?')}. Segmenter: {run.get('segmenter_message', '?')}. "
               f"Last build {run.get('finished_at', '?')} ({run.get('seconds', 0):.1f} s).")
    if run and is_surface(ws, state.category):
        st.info(f"{SURFACE_MESSAGE}.")


def _step(delta: int, n: int) -> None:
    st.session_state[PICK_KEY] = min(max(st.session_state.get(PICK_KEY, 0) + delta, 0), n - 1)


def _pick(samples: list[Sample], with_masks: set[str]) -> Sample:
    n = len(samples)
    if st.session_state.get(PICK_KEY, 0) >= n:
        st.session_state[PICK_KEY] = 0

    def label(i: int) -> str:
        return f"#{i + 1} · {samples[i].key}" + ("" if samples[i].key in with_masks else " · no masks yet")

    prev_col, pick_col, next_col = st.columns([1, 6, 1], vertical_alignment="bottom")
    prev_col.button("◀ Previous", key="masks_prev", on_click=_step, args=(-1, n))
    next_col.button("Next ▶", key="masks_next", on_click=_step, args=(1, n))
    return samples[pick_col.selectbox("Training image", range(n), format_func=label, key=PICK_KEY)]


def _set_rejected(workspace: str, category: str, image_key: str, component_id: int, key: str) -> None:
    """Toggle callback: store the decision before the page redraws the overlay."""
    try:
        curation.set_component_rejected(Workspace.open(workspace), category, image_key, component_id,
                                        rejected=not st.session_state[key])
    except ValueError as err:  # e.g. a rebuild in another tab replaced the components: undo the flip
        st.session_state[key] = not st.session_state[key]
        _say(category, "error", str(err))


def _cluster_label(cluster: int | None, names: dict[int, str], rejected: bool) -> str:
    if rejected:
        return "rejected"
    if cluster is None:
        return "not clustered yet"
    return names.get(cluster, "cluster too small (dropped)")


def _component_toggles(ws: Workspace, category: str, image_key: str, instances: np.ndarray, rejected: set[int],
                       names: dict[int, str]) -> None:
    clusters = curation.component_clusters(ws, category, image_key)
    areas = np.bincount(instances.ravel(), minlength=int(instances.max(initial=0)) + 1)
    st.markdown("**Components** (off = rejected: left out of the clusters and label maps)")
    for k in np.flatnonzero(areas[1:]) + 1:
        k = int(k)
        key = f"keep::{category}::{image_key}::{k}::{k in rejected}"  # follows the stored decision
        label = f"#{k} · {_cluster_label(clusters.get(k), names, k in rejected)} · {areas[k]} px"
        st.toggle(label, value=k not in rejected, key=key, on_change=_set_rejected,
                  args=(str(ws.path), category, image_key, k, key))


def _components_tab(ws: Workspace, category: str, sample: Sample, names: dict[int, str]) -> np.ndarray | None:
    """The overlay and the reject/restore toggles; returns the overlay for the drawing tab."""
    components = edits.effective_components(ws, category, sample.key)
    if components is None:
        st.info("No masks for this image yet: press **Build masks and clusters** above.")
        return None
    rejected = curation.rejected_components(ws, category, sample.key)
    picture = loaders.component_overlay(str(ws.path), category, sample.key, str(sample.path),
                                        edits.component_version(ws, category, sample.key), tuple(sorted(rejected)))
    height, width = components.instances.shape
    left, right = st.columns([3, 2])
    left.image(picture, caption=f"{sample.key} ({width}×{height} px): components numbered; grey (n) = rejected")
    with right:
        _component_toggles(ws, category, sample.key, components.instances, rejected, names)
    return picture


def _tag_choice(ws: Workspace, category: str, key: str) -> str:
    tags = list(category_tags(ws, category).tags) or ["part"]
    return st.selectbox("Tag", tags, key=key, help="Kept tags from the Tags page (the vocabulary until you keep one).")


def _region_edit(ws: Workspace, category: str, image_key: str, action: str, mask: np.ndarray | None, tag: str) -> None:
    try:
        with st.spinner("Updating the features, clusters and label maps…"):
            if action == "add":
                new_id = curation.add_region(ws, category, image_key, mask, tag)
                _say(category, "success", f"Added component #{new_id} ({tag}).")
            elif action == "erase":
                curation.erase_region(ws, category, image_key, mask)
                _say(category, "success", "Erased the region from the components.")
            else:
                curation.clear_region_edits(ws, category, image_key)
                _say(category, "success", "Undid this image's drawn and erased regions.")
    except ValueError as err:
        _say(category, "error", str(err))
        return
    st.rerun()  # the overlay above was drawn before the edit


def _region_tab(ws: Workspace, category: str, sample: Sample, picture: np.ndarray | None) -> None:
    if picture is None:
        st.info("Build masks first; then you can add a missed part or erase a wrong piece here.")
        return
    shape = loaders.image(str(sample.path)).shape
    tag = _tag_choice(ws, category, key="region_tag")
    if drawing.draw_mode("region_mode") == drawing.MOUSE:
        mask = drawing.canvas_region(picture, shape, key=f"region_canvas::{category}::{sample.key}")
    else:
        mask = drawing.rectangle_mask(shape, drawing.typed_rectangle(shape, "region_rect"))
    usable = mask is not None and bool(mask.any())
    n_edits = len(edits.load_edits(ws, category, sample.key))
    c1, c2, c3 = st.columns(3)
    for col, action, label in ((c1, "add", "Add as a new component"), (c2, "erase", "Erase from every component")):
        if col.button(label, key=f"region_{action}", disabled=not usable):
            _region_edit(ws, category, sample.key, action, mask, tag)
    if c3.button(f"Undo region edits ({n_edits})", key="region_undo", disabled=not n_edits):
        _region_edit(ws, category, sample.key, "undo", None, tag)


def _save_boxes(ws: Workspace, category: str, image_key: str, boxes: list[Box]) -> None:
    try:
        curation.set_boxes(ws, category, image_key, boxes)
    except ValueError as err:
        _say(category, "error", str(err))
        return
    _say(category, "success", f"{len(boxes)} box(es) stored for {image_key}; they are used at the next build.")
    st.rerun()


def _boxes_tab(ws: Workspace, category: str, sample: Sample) -> None:
    st.caption("Boxes prompt the segmenter like a detector would: the manual detector (or auto without "
               "GroundingDINO) uses them at the next build and carries them over to the other images, by "
               "look-alike regions and by the box's picture (so a part the segmenter cuts into pieces, such "
               "as a printed label, stays one part). One or two images with the part boxed are enough.")
    image = loaders.image(str(sample.path))
    boxes = edits.manual_boxes(ws, category).get(sample.key, [])
    tag = _tag_choice(ws, category, key="box_tag")
    if drawing.draw_mode("box_mode") == drawing.MOUSE:
        picture = render.display_image(image)
        drawn = drawing.canvas_boxes(picture, picture.shape[1] / image.shape[1], boxes, tag,
                                     key=f"box_canvas::{category}::{sample.key}")
        if st.button("Save the drawn boxes", key="save_boxes"):
            _save_boxes(ws, category, sample.key, drawn)
    else:
        x0, y0, x1, y1 = drawing.typed_rectangle(image.shape, "box_rect")
        if st.button("Add this box", key="add_box"):
            _save_boxes(ws, category, sample.key, boxes + [Box(x0, y0, x1, y1, tag)])
    if boxes:
        st.dataframe(pd.DataFrame([edits.box_to_dict(b) for b in boxes]), hide_index=True, key="box_table")
        if st.button("Remove this image's boxes", key="clear_boxes"):
            _save_boxes(ws, category, sample.key, [])


def _show_message(category: str) -> None:
    """The last action's outcome, shown once (a flash message)."""
    message = st.session_state.pop(MESSAGE_KEY, None)
    if message and message[0] == category:
        (st.success if message[1] == "success" else st.error)(message[2])


def masks_page() -> None:
    st.title("Masks")
    ws = require_workspace()
    category = require_category(ws, key="masks_category")
    choice = category_tags(ws, category)
    st.caption(f"Prompts ({'kept tags' if choice.source == 'curated' else 'vocabulary'}): "
               f"{', '.join(choice.tags) or 'none'}; background: {', '.join(choice.background) or 'none'}.")
    st.page_link("pages/tags.py", label="Change the tags", icon=":material/sell:")
    config = _run_config(ws, category)
    if st.button("Build masks and clusters", type="primary", key="build_masks"):
        _build(ws, category, config)
    _show_message(category)
    try:
        samples = loaders.category_data(ws, category).select("train")
    except DataError as err:
        st.error(str(err))
        return
    state = store.load_state(ws, category)
    if state.done:
        _summary(ws, state)
    else:
        st.info(f"No masks yet for **{category}**: press **Build masks and clusters** "
                "(you can draw boxes for the manual detector first, below).")
    if not samples:
        st.info("This category has no training images.")
        return
    sample = _pick(samples, set(state.components))
    components_tab, region_tab, boxes_tab = st.tabs(["Components", "Draw or erase a region", "Boxes for the detector"])
    with components_tab:
        picture = _components_tab(ws, category, sample, state.cluster_names)
    with region_tab:
        _region_tab(ws, category, sample, picture)
    with boxes_tab:
        _boxes_tab(ws, category, sample)
    if state.done:
        st.page_link("pages/clusters.py", label="Next: review the clusters", icon=":material/arrow_forward:")


ensure_frame()
masks_page()
