"""Tags page: suggestions from the taggers, keep/drop/background decisions, custom tags."""

from __future__ import annotations

from pipeline.pseudolabels.adapters.tagger import VocabularyTagger
from pipeline.pseudolabels.tag_curation import category_tags, stored_suggestions, suggest_tags
from pipeline.workspace import Workspace

PAGE = "pages/tags.py"
CATEGORY = "pin_tray"
ADD_BUTTON = "FormSubmitter:custom_tags-Add tags"


def _control(at, tag: str):
    """The keep/drop/background control of one tag (labelled with the tag)."""
    [control] = [c for c in at.segmented_control if c.label == tag]
    return control


def test_suggest_tags_stores_them_and_lists_each_source(app, pl_copy, isolated_weights):
    ws_path = pl_copy("ready")
    at = app.open(ws_path, PAGE)
    assert "No suggestions yet" in at.info[0].value
    assert not at.segmented_control
    # RAM++ is missing here: the page says how to add it, it is not an error.
    advice = " ".join(m.value for m in at.markdown)
    assert "RAM++: not available" in advice and "ram_plus_swin_large_14m.pth" in advice
    assert not at.error

    at.button("suggest_tags").click()
    app.run(at)
    stored = stored_suggestions(Workspace.open(ws_path), CATEGORY)
    sources = {part for s in stored for part in s.source.split("+")}
    assert {"vocabulary", "imagenet"} <= sources
    assert [c.label for c in at.segmented_control] == [s.tag for s in stored]
    assert all(c.value is None for c in at.segmented_control)  # nothing decided yet
    captions = {c.value for c in at.caption}
    assert "vocabulary" in captions and any("ImageNet" in c for c in captions)
    assert at.success[0].value.startswith(f"{len(stored)} suggestions from ")
    assert not at.info


def test_decisions_persist_and_set_the_prompts(app, pl_copy):
    ws_path = pl_copy("ready")
    suggest_tags(Workspace.open(ws_path), CATEGORY, [], [VocabularyTagger()])  # vocabulary only: no model
    at = app.open(ws_path, PAGE)
    assert {c.label for c in at.segmented_control} >= {"tray", "divider", "pin", "background"}

    _control(at, "tray").set_value("background")
    app.run(at)
    assert Workspace.open(ws_path).tags(CATEGORY) == {"tray": "background"}
    _control(at, "pin").set_value("keep")
    app.run(at)
    _control(at, "divider").set_value("drop")
    app.run(at)

    ws = Workspace.open(ws_path)
    assert ws.tags(CATEGORY) == {"divider": "drop", "pin": "keep", "tray": "background"}
    choice = category_tags(ws, CATEGORY)
    assert choice.tags == ("pin",) and "tray" in choice.background
    assert any(m.value.startswith("**The next run prompts the detector with** (your kept tags): pin;")
               for m in at.markdown)

    # A fresh session shows the stored decisions.
    again = app.open(ws_path, PAGE)
    assert {t: _control(again, t).value for t in ("tray", "pin", "divider", "background")} == {
        "tray": "background", "pin": "keep", "divider": "drop", "background": None,
    }


def test_custom_tags_are_kept_and_listed(app, pl_copy):
    ws_path = pl_copy("ready")
    at = app.open(ws_path, PAGE)
    at.text_input("custom_tags_text").input("Cable  clip, pin,")
    at.button(ADD_BUTTON).click()
    app.run(at)
    assert Workspace.open(ws_path).tags(CATEGORY) == {"cable clip": "keep", "pin": "keep"}
    assert [s.value for s in at.success] == ["Kept: cable clip, pin."]
    assert {c.label: c.value for c in at.segmented_control} == {"cable clip": "keep", "pin": "keep"}
    assert "user" in {c.value for c in at.caption}

    at.text_input("custom_tags_text").input(" , ")
    at.button(ADD_BUTTON).click()
    app.run(at)
    assert len(at.warning) == 1 and "Type at least one tag" in at.warning[0].value
    assert len(Workspace.open(ws_path).tags(CATEGORY)) == 2
