"""Tags: suggested image tags to keep, drop or mark as background (AeCSAD step 1)."""

import streamlit as st

from app.widgets import not_built_yet


def tags_page() -> None:
    st.title("Tags")
    not_built_yet(
        "Tag curation",
        "Here you will review tags suggested by RAM++ (or, offline, the category vocabulary and the "
        "backbone's ImageNet labels), keep object nouns and mark background tags. It arrives with the "
        "pseudo-label pipeline.",
    )


tags_page()
