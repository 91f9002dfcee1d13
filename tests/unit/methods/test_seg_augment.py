import numpy as np
import pytest

from pipeline.methods.segmentation.augment import AugmentSettings, augment_pair, geometric, photometric

NO_COLOUR = dict(brightness=0.0, contrast=0.0, saturation=0.0, noise_probability=0.0)


def _pair(h=12, w=20) -> tuple[np.ndarray, np.ndarray]:
    """An image whose red channel encodes each pixel's label, so they can be checked together."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(h, w)).astype(np.uint8)
    image = np.stack([labels * 40, rng.integers(0, 256, (h, w)), np.arange(h * w).reshape(h, w) % 256], -1)
    return image.astype(np.uint8), labels


@pytest.mark.parametrize("seed", range(12))
def test_geometry_moves_image_and_labels_identically(seed):
    image, labels = _pair()
    out_img, out_lab = augment_pair(image, labels, np.random.default_rng(seed), AugmentSettings(**NO_COLOUR))
    assert np.array_equal(out_img[..., 0], out_lab * 40)
    assert out_img.shape[:2] == out_lab.shape and sorted(out_lab.shape) == sorted(labels.shape)
    # a pure rearrangement of pixels: same multiset of (image, label) rows
    before = np.sort(np.c_[image.reshape(-1, 3), labels.reshape(-1)], axis=0)
    after = np.sort(np.c_[out_img.reshape(-1, 3), out_lab.reshape(-1)], axis=0)
    assert np.array_equal(before, after)


def test_all_eight_symmetries_occur_and_outputs_are_contiguous():
    image, labels = _pair(6, 6)
    seen = set()
    for seed in range(64):
        out_img, out_lab = geometric(image, labels, np.random.default_rng(seed), AugmentSettings())
        assert out_img.flags.c_contiguous and out_lab.flags.c_contiguous
        seen.add(out_lab.tobytes())
    assert len(seen) == 8  # the dihedral group of the square


def test_disabled_augmentation_is_the_identity():
    image, labels = _pair()
    off = AugmentSettings(hflip=0.0, vflip=0.0, rot90=False, **NO_COLOUR)
    out_img, out_lab = augment_pair(image, labels, np.random.default_rng(3), off)
    assert np.array_equal(out_img, image) and np.array_equal(out_lab, labels)


def test_colour_and_noise_touch_the_image_only_and_are_seeded():
    image, labels = _pair()
    colour_only = AugmentSettings(hflip=0.0, vflip=0.0, rot90=False, noise_probability=1.0, noise_std=0.05)
    a_img, a_lab = augment_pair(image, labels, np.random.default_rng(5), colour_only)
    b_img, b_lab = augment_pair(image, labels, np.random.default_rng(5), colour_only)
    c_img, _ = augment_pair(image, labels, np.random.default_rng(6), colour_only)
    assert np.array_equal(a_lab, labels) and np.array_equal(a_img, b_img)
    assert not np.array_equal(a_img, image) and not np.array_equal(a_img, c_img)
    assert a_img.dtype == np.uint8


def test_brightness_scales_a_gray_image():
    gray = np.full((4, 4, 3), 100, np.uint8)
    only_brightness = AugmentSettings(brightness=0.5, contrast=0.0, saturation=0.0, noise_probability=0.0)
    rng = np.random.default_rng(0)
    factor = 1.0 + np.random.default_rng(0).uniform(-0.5, 0.5)
    out = photometric(gray, rng, only_brightness)
    assert np.all(out == np.clip(np.rint(100 * factor), 0, 255))


def test_size_mismatch_is_rejected():
    image, labels = _pair()
    with pytest.raises(ValueError):
        augment_pair(image, labels[:-1], np.random.default_rng(0))
