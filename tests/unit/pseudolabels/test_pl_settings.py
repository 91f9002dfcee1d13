"""``with_assignments``: the ``part.field=value`` changes of the CLI's ``--set`` and the quality script."""

from __future__ import annotations

import pytest

from pipeline.pseudolabels.settings import PseudoLabelSettings, with_assignments


def test_assignments_are_read_as_json_and_typed_like_the_field():
    settings = with_assignments(PseudoLabelSettings(), [
        "classic.refine_iterations=2", "clusters.bandwidth_quantile=0.4", "clusters.bandwidth=null",
        "features.mask_fill=black", "masks.border_background=false", "classic.felzenszwalb_scales=[100, 300]",
        "clusters.colour_split=12",  # an int where a float goes is fine
    ])
    assert settings.classic.refine_iterations == 2 and settings.clusters.bandwidth_quantile == 0.4
    assert settings.clusters.bandwidth is None and settings.features.mask_fill == "black"
    assert settings.masks.border_background is False and settings.classic.felzenszwalb_scales == (100, 300)
    assert settings.clusters.colour_split == 12
    untouched = PseudoLabelSettings()
    assert settings.reliability == untouched.reliability
    assert settings.fingerprint("reliability") == untouched.fingerprint("reliability")  # only named parts change
    assert settings.fingerprint("classic") != untouched.fingerprint("classic")


def test_no_assignments_give_equal_settings():
    assert with_assignments(PseudoLabelSettings(), []) == PseudoLabelSettings()


@pytest.mark.parametrize("assignment, message", [
    ("classic.refine=2", "unknown setting 'classic.refine'"),
    ("colour.split=2", "unknown setting 'colour.split'"),
    ("refine_iterations", "write part.field=value"),
    ("classic.refine_iterations=2.5", "takes int, got 2.5"),
    ("classic.refine_iterations=true", "takes int, got True"),
    ("masks.border_background=1", "takes bool, got 1"),
    ("clusters.bandwidth_quantile=wide", "takes float, got 'wide'"),
    ("clusters.bandwidth=wide", "takes float | None, got 'wide'"),
])
def test_a_typo_or_a_wrong_type_is_a_value_error(assignment, message):
    with pytest.raises(ValueError, match=message.replace("|", r"\|").replace(".", r"\.")):
        with_assignments(PseudoLabelSettings(), [assignment])
