"""Clusters: component clusters as pseudo-labels, and the reliable/unreliable image split (AeCSAD steps 3-5)."""

import streamlit as st

from app.widgets import not_built_yet


def clusters_page() -> None:
    st.title("Clusters")
    not_built_yet(
        "Cluster review",
        "Here you will name, merge and split component clusters, move single components, and override "
        "which images count as reliably labelled. It arrives with the pseudo-label pipeline.",
    )


clusters_page()
