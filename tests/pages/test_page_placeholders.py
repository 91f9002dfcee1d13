"""Pages whose issues are not built yet say so plainly, inside the app frame."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("page", "title", "what"), [
    ("pages/tags.py", "Tags", "Tag curation"),
    ("pages/masks.py", "Masks", "Mask review"),
    ("pages/clusters.py", "Clusters", "Cluster review"),
])
def test_unbuilt_page_says_not_built_yet(app, page_workspaces, page, title, what):
    at = app.open(page_workspaces["evaluated"], page)
    assert [t.value for t in at.title] == [title]
    assert len(at.info) == 1
    assert f"**{what} is not built yet.**" in at.info[0].value
    # Nothing interactive pretends to work: no buttons, inputs or charts on the page.
    assert not at.button and not at.selectbox and not at.text_input and not at.get("plotly_chart")
    # ...but it points to the pages that do work.
    assert len(at.get("page_link")) == 4
