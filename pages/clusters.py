"""Clusters: the component clusters that become the classes of the label maps (AeCSAD steps 3-5):
name them, merge, split, move single components; review which images count as reliably labelled
(D_L) and override any of them, or switch to confidence weighting (every image trains, weighted
by how typical its class areas are) and override an image's confidence; preview an image's label
map. Edits are stored at once (``pipeline.pseudolabels.curation``, ``confidence``) and the label
maps follow them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app import loaders
from app.navigation import ensure_frame
from app.state import require_category, require_workspace
from pipeline.pseudolabels import confidence, curation, edits, render, store
from pipeline.pseudolabels.export import label_maps_zip
from pipeline.pseudolabels.surface import SURFACE_MESSAGE, is_surface
from pipeline.workspace import Workspace

# Thumbnails shown per cluster row.
STRIP = 10
# (category, "success" | "error", text): the outcome of the last edit, shown once after the rerun.
MESSAGE_KEY = "clusters_message"
OVERRIDES = {"auto": None, "reliable": True, "unreliable": False}
# Move target meaning "a new cluster of its own" (cluster ids start at 1).
NEW_CLUSTER = 0


def _say(category: str, kind: str, text: str) -> None:
    st.session_state[MESSAGE_KEY] = (category, kind, text)


def _show_message(category: str) -> None:
    message = st.session_state.pop(MESSAGE_KEY, None)
    if message and message[0] == category:
        (st.success if message[1] == "success" else st.error)(message[2])


def _edit(category: str, done: str, action: Callable[..., object], *args: object) -> None:
    """Run a curation edit; remember the outcome and redraw (the gallery above shows the old state)."""
    try:
        with st.spinner("Updating the clusters and label maps…"):
            action(*args)
    except ValueError as err:
        _say(category, "error", str(err))
    else:
        _say(category, "success", done)
    st.rerun()


def _swatch(cluster: int, n_clusters: int) -> str:
    colour = render.hex_colour(render.palette(max(n_clusters, cluster))[cluster])
    return f'<span style="display:inline-block;width:0.9em;height:0.9em;background:{colour};border-radius:2px"></span>'


def _rename(workspace: str, category: str, cluster: int, old: str, key: str) -> None:
    """Name field callback: store the new name before the page redraws."""
    try:
        curation.rename_cluster(Workspace.open(workspace), category, cluster, st.session_state[key])
    except ValueError as err:  # e.g. an empty name: show the stored name again
        st.session_state[key] = old
        _say(category, "error", str(err))


def _thumbnails(ws: Workspace, category: str, members: list[tuple[str, int]], images: dict[str, str]) -> None:
    pictures, captions = [], []
    for image_key, component in members[:STRIP]:
        version = edits.component_version(ws, category, image_key)
        thumb = loaders.component_thumbnail(str(ws.path), category, image_key, images[image_key], version, component)
        if thumb is not None:
            pictures.append(thumb)
            captions.append(f"{Path(image_key).name} #{component}")
    if pictures:
        st.image(pictures, caption=captions, width=88)
    if len(members) > STRIP:
        st.caption(f"… and {len(members) - STRIP} more")


def _cluster_row(ws: Workspace, category: str, cluster: int, name: str, members: list[tuple[str, int]],
                 images: dict[str, str], n_clusters: int) -> None:
    with st.container(border=True):
        swatch_col, name_col, count_col = st.columns([1, 8, 3], vertical_alignment="center")
        swatch_col.markdown(f"{_swatch(cluster, n_clusters)} **{cluster}**", unsafe_allow_html=True)
        key = f"cluster_name::{category}::{cluster}::{name}"  # follows the stored name
        name_col.text_input(f"Name of cluster {cluster}", value=name, key=key, label_visibility="collapsed",
                            on_change=_rename, args=(str(ws.path), category, cluster, name, key))
        count_col.markdown(f"**{len(members)}** component(s)")
        _thumbnails(ws, category, members, images)


def _merge(ws: Workspace, category: str, names: dict[int, str]) -> None:
    label = lambda c: f"{c}: {names[c]}"  # noqa: E731
    keep = st.selectbox("Keep", list(names), format_func=label, key="merge_keep")
    other = st.selectbox("Merge into it", [c for c in names if c != keep], format_func=label, key="merge_other")
    if st.button("Merge", key="merge_button", disabled=other is None):
        _edit(category, f"Merged {names[other]} into {names[keep]}.", curation.merge_clusters, ws, category, keep, other)


def _split(ws: Workspace, category: str, names: dict[int, str], members: dict[int, list]) -> None:
    cluster = st.selectbox("Cluster", list(names), format_func=lambda c: f"{c}: {names[c]} ({len(members[c])})",
                           key="split_cluster")
    parts = st.number_input("Parts", 2, 10, 2, key="split_parts", help="Re-clustered by their features (k-means).")
    if st.button("Split", key="split_button", disabled=len(members[cluster]) < 2):
        _edit(category, f"Split {names[cluster]} into {parts} parts.", curation.split_cluster, ws, category,
              cluster, int(parts))


def _move(ws: Workspace, category: str, names: dict[int, str], members: dict[int, list], images: dict[str, str]) -> None:
    source = st.selectbox("From cluster", list(names), format_func=lambda c: f"{c}: {names[c]}", key="move_from")
    options = members[source]
    member = st.selectbox("Component", range(len(options)), key="move_member",
                          format_func=lambda i: f"{options[i][0]} #{options[i][1]}")
    targets = [c for c in names if c != source] + [NEW_CLUSTER]
    target = st.selectbox("To", targets, key="move_to",
                          format_func=lambda c: "a new cluster of its own" if c == NEW_CLUSTER else f"{c}: {names[c]}")
    if member is not None and member < len(options):
        image_key, component = options[member]
        thumb = loaders.component_thumbnail(str(ws.path), category, image_key, images[image_key],
                                            edits.component_version(ws, category, image_key), component)
        if thumb is not None:
            st.image(thumb, width=88)
        if st.button("Move", key="move_button"):
            _edit(category, f"Moved {image_key} #{component}.", curation.move_component, ws, category,
                  image_key, component, None if target == NEW_CLUSTER else target)


def _override(workspace: str, category: str, image_key: str, key: str) -> None:
    """Radio callback: force the image into D_L or D_U, or give it back to the automatic split."""
    try:
        curation.set_reliability_override(Workspace.open(workspace), category, image_key,
                                          OVERRIDES[st.session_state[key]])
    except ValueError as err:
        _say(category, "error", str(err))


def _set_weighting(workspace: str, category: str, key: str) -> None:
    """Toggle callback: train the category's segmentation network with confidence weights or not."""
    confidence.set_weighting(Workspace.open(workspace), category, bool(st.session_state[key]))


def _set_confidence(workspace: str, category: str, image_key: str, old: str, key: str) -> None:
    """Text field callback: a confidence in [0, 1] by hand, or "auto" for the IQR fence's."""
    try:
        confidence.set_confidence_override(Workspace.open(workspace), category, image_key,
                                           confidence.parse_confidence(st.session_state[key]))
    except ValueError as err:  # show the stored value again
        st.session_state[key] = old
        _say(category, "error", str(err))


def _summary(split, found: confidence.ImageConfidence, weighting: bool) -> str:
    if not weighting:
        return (f"**{int(split.reliable.sum())}** images train the segmentation network with their label maps "
                f"(D_L); **{int((~split.reliable).sum())}** only through the unsupervised losses (D_U).")
    floor = confidence.ConfidenceSettings().floor
    low = int((found.effective < floor).sum())
    return (f"Confidence weighting: **{len(found.effective) - low}** images train with their label maps, each "
            f"weighted by its confidence; **{low}** below {floor:g} only through the unsupervised losses.")


def _reliability(ws: Workspace, category: str) -> None:
    split = store.load_reliability(ws, category)
    if split is None:
        st.info("No reliability split yet: build masks on the Masks page.")
        return
    overrides = edits.reliability_overrides(ws, category)
    found = confidence.image_confidence(ws, category)
    weighting = confidence.weighting_enabled(ws, category)
    toggle_key = f"confidence_weighting::{category}"
    st.toggle("Confidence weighting for training", value=weighting, key=toggle_key,
              on_change=_set_weighting, args=(str(ws.path), category, toggle_key),
              help="Off: the reliable images (D_L) train with their label maps, the others only through the "
                   "unsupervised losses. On: every image trains with its label map, its loss weighted by its "
                   "confidence: 1 while each class's area lies within 1.5 inter-quartile ranges of the typical "
                   "ones, decaying exponentially beyond. Used by the next training (Train page, fit, train-seg).")
    word = {True: "reliable (D_L)", False: "unreliable (D_U)"}
    table = pd.DataFrame({
        "image": split.image_keys, "automatic": [word[bool(a)] for a in split.automatic],
        "by hand": [word[overrides[k]] if k in overrides else "" for k in split.image_keys],
        "counts as": [word[bool(r)] for r in split.reliable], "distance": np.round(split.distance, 3),
        "confidence (auto)": np.round(found.automatic, 3),
        "confidence by hand": [f"{found.overrides[k]:g}" if k in found.overrides else "" for k in split.image_keys],
        "confidence": np.round(found.effective, 3),
    })
    st.markdown(_summary(split, found, weighting))
    st.dataframe(table, hide_index=True, key="reliability_table")
    image_key = st.selectbox("Image", split.image_keys, key="override_image")
    current = {True: "reliable", False: "unreliable"}.get(overrides.get(image_key), "auto")
    key = f"override::{category}::{image_key}::{current}"  # follows the stored override
    st.radio("Counts as", list(OVERRIDES), index=list(OVERRIDES).index(current), key=key, horizontal=True,
             format_func={"auto": "automatic split", "reliable": "reliable (D_L)", "unreliable": "unreliable (D_U)"}.get,
             on_change=_override, args=(str(ws.path), category, image_key, key))
    typed = f"{found.overrides[image_key]:g}" if image_key in found.overrides else "auto"
    key = f"confidence::{category}::{image_key}::{typed}"  # follows the stored override
    st.text_input("Confidence by hand (0–1, or auto)", value=typed, key=key,
                  on_change=_set_confidence, args=(str(ws.path), category, image_key, typed, key),
                  help="Wins over the automatic confidence and over the reliable/unreliable choice above "
                       "(which counts as 1 or 0 when weighting). Used only with confidence weighting on.")


def _legend(split, image_key: str, names: dict[int, str]) -> str:
    """Cluster colours with each cluster's share of the image (from the split's histograms)."""
    shares = None
    if split is not None and image_key in split.image_keys:
        shares = split.histograms[split.image_keys.index(image_key)]
    parts = []
    for cluster, name in names.items():
        share = f" {100 * shares[cluster]:.1f}%" if shares is not None and cluster < len(shares) else ""
        parts.append(f"{_swatch(cluster, len(names))} {name}{share}")
    return " &nbsp; ".join(parts) + " &nbsp; (black: background)"


def _label_map_preview(ws: Workspace, category: str, state: store.PseudoLabelState, images: dict[str, str]) -> None:
    keys = [k for k in images if k in set(state.label_maps)]
    if not keys:
        st.info("No label maps yet: build masks on the Masks page.")
        return
    image_key = st.selectbox("Image", keys, key="label_map_image")
    stamp = store.label_map_path(ws, category, image_key).stat().st_mtime
    pictures = loaders.label_map_pictures(str(ws.path), category, image_key, images[image_key], stamp,
                                          len(state.cluster_names))
    if pictures is None:
        return
    left, right = st.columns(2)
    left.image(pictures[0], caption=f"{image_key}: coloured by cluster")
    right.image(pictures[1], caption="Label map (what the segmentation network learns)")
    st.markdown(_legend(store.load_reliability(ws, category), image_key, state.cluster_names), unsafe_allow_html=True)


def _gallery(ws: Workspace, category: str, state: store.PseudoLabelState, members: dict[int, list],
             images: dict[str, str]) -> None:
    names = state.cluster_names
    dropped = state.n_components - sum(len(listed) for listed in members.values())
    st.caption(f"{len(names)} clusters from {state.n_components} components ({dropped} in clusters too small to keep, "
               "painted as background); the number is the class id in the label maps. Type a new name to rename.")
    for cluster, name in names.items():
        _cluster_row(ws, category, cluster, name, members.get(cluster, []), images, len(names))


def _cluster_edits(ws: Workspace, category: str, names: dict[int, str], members: dict[int, list],
                   images: dict[str, str]) -> None:
    st.subheader("Merge, split, move")
    merge_tab, split_tab, move_tab = st.tabs(["Merge two clusters", "Split a cluster", "Move a component"])
    with merge_tab:
        if len(names) > 1:
            _merge(ws, category, names)
        else:
            st.caption("There is only one cluster.")
    with split_tab:
        _split(ws, category, names, members)
    with move_tab:
        _move(ws, category, names, members, images)


def clusters_page() -> None:
    st.title("Clusters")
    ws = require_workspace()
    category = require_category(ws, key="clusters_category")
    state = store.load_state(ws, category)
    if state.run and is_surface(ws, category):
        st.info(f"**{category}**: {SURFACE_MESSAGE}. AeCSAD and CSAD score it with the students and patch "
                "retrieval; the histogram method with patch retrieval alone.")
    if not state.cluster_names:
        if state.run:  # built, and nothing came out: the note above says what follows
            st.page_link("pages/train.py", label="Next: train on the Train page", icon=":material/arrow_forward:")
            return
        st.info(f"No clusters yet for **{category}**. Build masks on the Masks page first.")
        st.page_link("pages/masks.py", label="Go to Masks", icon=":material/layers:")
        return
    _show_message(category)
    images = dict(state.run.get("images", {}))
    missing = [path for path in images.values() if not Path(path).is_file()]
    if missing:  # the thumbnails and previews are cut from these files
        st.error(f"{len(missing)} training image(s) of the last build are gone (first: `{missing[0]}`). If the data "
                 "moved, import its new folder on the Workspace & data page, then build again on the Masks page.")
        return
    members = curation.cluster_members(ws, category)
    _gallery(ws, category, state, members, images)
    _cluster_edits(ws, category, state.cluster_names, members, images)
    st.subheader("Reliable and unreliable images")
    _reliability(ws, category)
    st.subheader("Label map preview")
    _label_map_preview(ws, category, state, images)
    # A callable: the zip is built when the button is clicked, not on every rerun.
    st.download_button("Download the label maps (zip of 8-bit PNGs, 0 = background)", partial(label_maps_zip, ws, category),
                       file_name=f"{category}_label_maps.zip", mime="application/zip", key="download_label_maps")
    st.page_link("pages/train.py", label="Next: train on the Train page", icon=":material/arrow_forward:")


ensure_frame()
clusters_page()
