"""Masks: per-image component masks from GroundingDINO + SAM or their offline fallbacks (AeCSAD step 2)."""

import streamlit as st

from app.widgets import not_built_yet


def masks_page() -> None:
    st.title("Masks")
    not_built_yet(
        "Mask review",
        "Here you will see each image's component masks, accept or reject them, draw or erase with the "
        "canvas, and draw boxes for the fallback detector. It arrives with the pseudo-label pipeline.",
    )


masks_page()
