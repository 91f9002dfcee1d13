"""Component features: crops, shapes, determinism, rotation invariance of the variant average."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models.backbones import build_backbone
from pipeline.pseudolabels.features import component_colours, component_crop, component_features, project, variants
from pipeline.pseudolabels.settings import FeatureSettings
from pipeline.pseudolabels.types import ImageComponents


@pytest.fixture(scope="module")
def random_backbone():
    torch.manual_seed(0)
    return build_backbone("efficientnet_lite0", checkpoint=None)


def _scene(size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """An image with an L-shaped part (1) and a small square (2) on a textured backdrop."""
    rng = np.random.default_rng(0)
    image = rng.integers(60, 90, (size, size, 3)).astype(np.uint8)
    instances = np.zeros((size, size), np.int32)
    instances[10:30, 10:16] = 1
    instances[24:30, 16:30] = 1
    instances[36:42, 36:42] = 2
    image[instances == 1] = (200, 160, 40)
    image[instances == 2] = (40, 90, 210)
    image[12:14, 11:15] = (90, 60, 20)  # some inner texture on the part
    return image, instances


def test_features_shape_dtype_and_determinism(random_backbone):
    image, instances = _scene()
    components = ImageComponents("a", instances, instances == 0, ("auto", "auto"))
    settings = FeatureSettings(batch_size=1)
    first = component_features(image, components, random_backbone, settings)
    again = component_features(image, components, random_backbone, FeatureSettings(batch_size=8))
    assert first.shape == (2, 320) and first.dtype == np.float32
    np.testing.assert_allclose(first, again, rtol=1e-5, atol=1e-5)  # batching does not matter (float32 sums)
    assert not np.allclose(first[0], first[1])
    empty = ImageComponents("b", np.zeros_like(instances), np.ones_like(instances, bool), ())
    assert component_features(image, empty, random_backbone, settings).shape == (0, 320)


@pytest.mark.parametrize("rotations", [4, 8])
def test_variant_average_is_invariant_to_90_degree_rotation_and_flips(random_backbone, rotations):
    image, instances = _scene()
    settings = FeatureSettings(rotations=rotations)
    base = component_features(image, ImageComponents("a", instances, instances == 0), random_backbone, settings)
    for turn in (lambda a: np.rot90(a, 1), lambda a: np.rot90(a, 2), np.fliplr, np.flipud):
        turned = ImageComponents("a", np.ascontiguousarray(turn(instances)), turn(instances) == 0)
        other = component_features(np.ascontiguousarray(turn(image)), turned, random_backbone, settings)
        np.testing.assert_allclose(other, base, rtol=1e-4, atol=1e-5)


def test_without_variants_rotation_changes_the_features(random_backbone):
    image, instances = _scene()
    settings = FeatureSettings(variants=False)
    base = component_features(image, ImageComponents("a", instances, instances == 0), random_backbone, settings)
    turned = ImageComponents("a", np.ascontiguousarray(np.rot90(instances)), np.rot90(instances) == 0)
    other = component_features(np.ascontiguousarray(np.rot90(image)), turned, random_backbone, settings)
    assert not np.allclose(other[0], base[0], atol=1e-4)


def test_variants_count_and_group_closure():
    batch = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    assert len(variants(batch)) == 8 and len(variants(batch, 8)) == 16
    mean = torch.stack(variants(batch)).mean(0)
    turned = torch.stack(variants(torch.rot90(batch, 1, dims=(2, 3)))).mean(0)
    assert torch.allclose(mean, turned)
    with pytest.raises(ValueError):
        variants(batch, 6)


def test_crop_masks_outside_pixels_and_is_square():
    image, instances = _scene()
    crop = component_crop(image, instances == 2, FeatureSettings(mask_fill="black", crop_padding=0.5))
    assert crop.shape == (12, 12, 3) and crop.dtype == np.uint8
    assert (crop[0, 0] == 0).all() and (crop[6, 6] == (40, 90, 210)).all()
    mean_fill = component_crop(image, instances == 2, FeatureSettings(mask_fill="mean", crop_padding=0.5))
    assert (mean_fill[0, 0] == (124, 116, 104)).all()
    context = component_crop(image, instances == 2, FeatureSettings(mask_fill="none", crop_padding=0.5))
    assert (context[0, 0] == image[33, 33]).all()
    near_border = np.zeros((20, 20), bool)
    near_border[0:4, 0:10] = True  # the square leaves the image: padded with the fill
    assert component_crop(image[:20, :20], near_border).shape == (12, 12, 3)


def test_seeded_projection_is_fixed_and_reduces_the_dimension():
    features = np.random.default_rng(0).normal(size=(5, 40)).astype(np.float32)
    settings = FeatureSettings(projection_dim=8, seed=3)
    first, again = project(features, settings), project(features, settings)
    assert first.shape == (5, 8) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, project(features, FeatureSettings(projection_dim=8, seed=4)))
    assert project(features, FeatureSettings()) is features


def test_component_colours_are_each_components_mean_cielab_colour():
    from skimage.color import rgb2lab

    image, instances = _scene()
    colours = component_colours(image, ImageComponents("a", instances, instances == 0, ("auto", "auto")))
    assert colours.shape == (2, 3) and colours.dtype == np.float32
    expected = [rgb2lab(image)[instances == k].mean(0) for k in (1, 2)]
    np.testing.assert_allclose(colours, expected, rtol=1e-5, atol=1e-4)
    assert colours[1, 2] < -30 < 30 < colours[0, 2]  # the blue square has negative b*, the gold L positive
