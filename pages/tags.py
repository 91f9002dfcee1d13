"""Tags: suggested tags to keep (a part), drop, or mark as background (AeCSAD step 1).

Decisions are stored in the workspace the moment they are clicked and take effect at the next
"Build masks and clusters" on the Masks page (the detector is prompted with the kept tags).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app import loaders
from app.navigation import ensure_frame
from app.state import require_category, require_workspace
from pipeline.data.samples import DataError
from pipeline.device import resolve_device
from pipeline.models.weights import REGISTRY, SHARED_DIR_ENV, MissingWeightsError
from pipeline.pseudolabels.adapters.factory import ram_plus_unavailable
from pipeline.pseudolabels.tag_curation import (
    add_custom_tags, category_tags, set_tag_status, stored_suggestions, suggest_category_tags, suggestion_samples,
)
from pipeline.workspace import Workspace

SOURCE_NAMES = {"vocabulary": "vocabulary", "imagenet": "ImageNet", "ram_plus": "RAM++", "user": "user"}
DECISIONS = ("keep", "drop", "background")
DECISION_LABELS = {"keep": "keep (part)", "drop": "drop", "background": "background"}
# (category, text): the outcome of the last suggestion or added tags, shown once.
MESSAGE_KEY = "tags_message"


@dataclass(frozen=True)
class TagRow:
    """One line of the tag table: a suggestion, or a tag the user typed."""

    tag: str
    source: str
    score: float | None
    background_hint: bool
    decision: str | None


def _source_label(source: str) -> str:
    return " + ".join(SOURCE_NAMES.get(part, part) for part in source.split("+"))


def _ram_plus_advice(reason: str) -> str:
    ram, bert = REGISTRY["ram_plus"], REGISTRY["groundingdino_text_encoder"]
    return (
        f"**RAM++: not available** ({reason}). The suggestions come from the curated vocabulary and the "
        f"ImageNet labels meanwhile. To add RAM++: install the `ram` package "
        f"(https://github.com/xinyu1205/recognize-anything, not on PyPI), put `{ram.filenames[0]}` in the "
        f"folder named by `${SHARED_DIR_ENV}` (or point `{ram.env_var}` at it), and a local "
        f"`{bert.filenames[0]}` folder the same way (`{bert.env_var}`). `python -m pipeline doctor` checks them."
    )


def _sources() -> None:
    """Which taggers will answer; a missing RAM++ is a hint, not an error."""
    reason = ram_plus_unavailable()
    st.caption("Sources: " + ("RAM++, " if not reason else "") + "curated vocabulary, ImageNet labels, your own tags"
               + (" (RAM++ is not installed: see *Where suggestions come from*)." if reason else "."))
    with st.expander("Where suggestions come from", expanded=False):
        st.markdown("- **vocabulary**: the curated tags of this category in `assets/vocabulary.json` "
                    "(a generic list when the category has none)\n"
                    "- **ImageNet**: the embedded classifier's top labels on a few good images "
                    "(hints only: ImageNet knows few industrial part names)\n"
                    "- **user**: tags you type below")
        if reason:
            st.markdown(_ram_plus_advice(reason))
        else:
            st.markdown("- **RAM++**: installed, asked first")


def _suggest(ws: Workspace, category: str) -> None:
    try:
        samples = suggestion_samples(loaders.category_data(ws, category).select("train"))
        device = resolve_device("auto")
        with st.spinner(f"Asking the taggers about {len(samples)} good image(s)…"):
            classifier = loaders.classifier(str(device)) if samples else None
            found = suggest_category_tags(ws, category, samples, device, classifier=classifier,
                                          load_image=lambda path: loaders.image(str(path)))
    except (DataError, MissingWeightsError, ImportError, RuntimeError) as err:
        st.error(str(err))
        return
    st.session_state[MESSAGE_KEY] = (category, f"{len(found.suggestions)} suggestions from {found.taggers}.")


def _rows(ws: Workspace, category: str) -> list[TagRow]:
    """Stored suggestions (best first), then tags decided on that no tagger suggested."""
    decisions = ws.tags(category)
    rows = [TagRow(s.tag, _source_label(s.source), s.score, s.background, decisions.get(s.tag))
            for s in stored_suggestions(ws, category)]
    suggested = {r.tag for r in rows}
    rows += [TagRow(tag, "user", None, False, status) for tag, status in decisions.items() if tag not in suggested]
    return rows


def _decide(workspace: str, category: str, tag: str, key: str) -> None:
    """Stores the clicked decision (callback: runs before the page redraws)."""
    choice = st.session_state.get(key)
    if choice in DECISIONS:
        set_tag_status(Workspace.open(workspace), category, tag, choice)


def _tag_table(ws: Workspace, category: str, rows: list[TagRow]) -> None:
    header = st.columns([3, 3, 1, 5])
    for col, text in zip(header, ("**tag**", "**suggested by**", "**score**", "**decision**")):
        col.markdown(text)
    for row in rows:
        tag_col, source_col, score_col, decision_col = st.columns([3, 3, 1, 5], vertical_alignment="center")
        tag_col.markdown(f"`{row.tag}`" + (" · *background?*" if row.background_hint and not row.decision else ""))
        source_col.caption(row.source)
        score_col.caption("" if row.score is None else f"{row.score:.2f}")
        # The key carries the stored decision, so the control always shows what the workspace holds
        # (also after another tab or the `tags` command changed it).
        key = f"tag_decision::{category}::{row.tag}::{row.decision}"
        decision_col.segmented_control(
            row.tag, DECISIONS, default=row.decision, required=True, key=key, label_visibility="collapsed",
            format_func=DECISION_LABELS.get, on_change=_decide, args=(str(ws.path), category, row.tag, key),
        )


def _custom(ws: Workspace, category: str) -> None:
    with st.form("custom_tags", clear_on_submit=True):
        text = st.text_input("Add your own tags (comma separated); they are kept as parts", key="custom_tags_text")
        if st.form_submit_button("Add tags"):
            added = add_custom_tags(ws, category, text)
            if not added:
                st.warning("Type at least one tag, e.g. `pin, cable clip`.")
                return
            st.session_state[MESSAGE_KEY] = (category, f"Kept: {', '.join(added)}.")
            st.rerun()  # the table above was drawn before the new tags existed


def _next_run(ws: Workspace, category: str) -> None:
    choice = category_tags(ws, category)
    origin = "your kept tags" if choice.source == "curated" else "the vocabulary, until you keep a tag"
    st.markdown(f"**The next run prompts the detector with** ({origin}): "
                f"{', '.join(choice.tags) or 'no tags'}; **background:** {', '.join(choice.background) or 'none'}.")


def tags_page() -> None:
    st.title("Tags")
    ws = require_workspace()
    category = require_category(ws, key="tags_category")
    st.caption("Keep the tags that name parts of a good image, mark what is background (table, tray floor), "
               "drop the rest. The detector looks for the kept tags when masks are built.")
    _sources()
    if st.button("Suggest tags", type="primary", key="suggest_tags"):
        _suggest(ws, category)
    message = st.session_state.pop(MESSAGE_KEY, None)  # shown once
    if message and message[0] == category:
        st.success(message[1])
    rows = _rows(ws, category)
    if rows:
        _tag_table(ws, category, rows)
    else:
        st.info("No suggestions yet: press **Suggest tags** (it looks at a few good training images), "
                "or type your own tags below.")
    _custom(ws, category)
    _next_run(ws, category)
    st.page_link("pages/masks.py", label="Next: build masks on the Masks page", icon=":material/arrow_forward:")


ensure_frame()
tags_page()
