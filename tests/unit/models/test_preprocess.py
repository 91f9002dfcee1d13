"""The one resizer: shapes, normalisation, determinism, and map resizing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, resize_map, to_tensor_batch


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_images_of_any_size_become_one_normalised_batch():
    batch = to_tensor_batch([_image(50, 70), _image(300, 200, 1)], 64)
    assert batch.shape == (2, 3, 64, 64) and batch.dtype == torch.float32
    flat = np.full((17, 31, 3), (255, 128, 0), np.uint8)
    expected = (np.array([1.0, 128 / 255, 0.0]) - IMAGENET_MEAN) / IMAGENET_STD
    out = to_tensor_batch([flat], 32)[0]
    for channel in range(3):
        torch.testing.assert_close(out[channel], torch.full((32, 32), float(expected[channel])), atol=1e-5, rtol=0)


def test_resizing_is_antialiased_bilinear_and_batch_independent():
    image = _image(128, 96)
    alone = to_tensor_batch([image], 32)
    assert torch.equal(alone, to_tensor_batch([image], 32))
    assert torch.equal(alone[0], to_tensor_batch([_image(40, 40, 3), image], 32)[1])
    raw = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    reference = F.interpolate(raw, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(alone, (reference - mean) / std)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3))])
def test_only_uint8_rgb_is_accepted(bad):
    with pytest.raises(ValueError, match="uint8 RGB"):
        to_tensor_batch([bad], 16)


def test_resize_map_reaches_the_image_shape():
    small = np.arange(64, dtype=np.float32).reshape(8, 8)
    big = resize_map(small, (30, 40))
    assert big.shape == (30, 40) and big.dtype == np.float32
    assert small.min() <= big.min() and big.max() <= small.max()
    np.testing.assert_allclose(resize_map(torch.full((4, 4), 2.5), (9, 7)), 2.5, atol=1e-6)
    same = resize_map(small, (8, 8))
    np.testing.assert_array_equal(same, small)
    same[0, 0] = -1
    assert small[0, 0] == 0  # a copy, never the caller's array
