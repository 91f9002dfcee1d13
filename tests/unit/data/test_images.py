"""Safe image loading: listing, probing, RGB conversion, masks and bad-file reporting."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data.images import (
    ImageReadError,
    list_image_files,
    load_mask,
    load_rgb,
    probe_image,
    scan_folder,
    scan_images,
)


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _noise(seed: int = 0, shape: tuple[int, ...] = (16, 16, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_list_image_files_sorted_filtered_and_hidden_skipped(tmp_path: Path) -> None:
    for name in ["c.png", "a.JPG", "b.tiff", ".hidden.png", "notes.txt", "d.bmp", "e.jpeg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()  # a folder with an image-like name is not a file
    names = [p.name for p in list_image_files(tmp_path)]
    assert names == ["a.JPG", "b.tiff", "c.png", "d.bmp", "e.jpeg"]


def test_list_image_files_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_image_files(tmp_path / "nope") == []


def test_load_rgb_keeps_rgb_pixels(tmp_path: Path) -> None:
    array = _noise()
    Image.fromarray(array).save(tmp_path / "rgb.png")
    out = load_rgb(tmp_path / "rgb.png")
    assert out.dtype == np.uint8 and out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out, array)


def test_load_rgb_gray_repeats_channel(tmp_path: Path) -> None:
    gray = _noise(1, (16, 16))
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = load_rgb(tmp_path / "g.png")
    assert out.shape == (16, 16, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], gray)


def test_load_rgb_drops_alpha(tmp_path: Path) -> None:
    rgba = _noise(2, (16, 16, 4))
    rgba[:, :, 3] = 0  # fully transparent must not turn black: alpha is dropped, not composited
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "a.png"), rgba[:, :, :3])


def test_load_rgb_palette_uses_palette_colours(tmp_path: Path) -> None:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    image.paste(1, (0, 0, 8, 16))
    image.save(tmp_path / "p.png")
    out = load_rgb(tmp_path / "p.png")
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[0, 15].tolist() == [0, 0, 0]


def test_load_rgb_scales_16_bit(tmp_path: Path) -> None:
    values = np.zeros((16, 16), dtype=np.uint16)
    values[:, 8:] = 65535
    values[0, 0] = 257 * 100
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as stored:
        assert stored.mode.startswith("I")  # really a 16-bit file on disk
    out = load_rgb(tmp_path / "deep.png")
    assert out.dtype == np.uint8
    assert out[0, 0].tolist() == [100, 100, 100]
    assert out[5, 15].tolist() == [255, 255, 255]
    assert out[5, 1].tolist() == [0, 0, 0]


def test_load_rgb_cmyk(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    out = load_rgb(tmp_path / "c.jpg")
    assert out.shape == (16, 16, 3)
    assert out[8, 8, 0] > 200 and out[8, 8, 1] < 60 and out[8, 8, 2] < 60  # red


def test_probe_flags_grayscale_not_palette(tmp_path: Path) -> None:
    Image.fromarray(_noise(3, (16, 16)), mode="L").save(tmp_path / "g.png")
    Image.fromarray(_noise(4)).convert("P").save(tmp_path / "p.png")
    Image.fromarray(_noise(5)).save(tmp_path / "c.png")
    gray = probe_image(tmp_path / "g.png")
    assert gray.is_grayscale and gray.mode == "L" and (gray.width, gray.height) == (16, 16)
    assert not probe_image(tmp_path / "p.png").is_grayscale
    assert not probe_image(tmp_path / "c.png").is_grayscale


def test_corrupt_file_raises_with_name_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.png"
    path.write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ImageReadError, match="corrupt.png.*not an image") as info:
        load_rgb(path)
    assert info.value.path == path


def test_truncated_png_raises(tmp_path: Path) -> None:
    data = _png_bytes(_noise(6, (64, 64, 3)))
    path = tmp_path / "half.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="half.png.*truncated"):
        probe_image(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        probe_image(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match="not found"):
        load_rgb(tmp_path / "gone.png")


def test_scan_images_splits_readable_gray_and_bad(tmp_path: Path) -> None:
    Image.fromarray(_noise(7)).save(tmp_path / "a.png")
    Image.fromarray(_noise(8, (16, 16)), mode="L").save(tmp_path / "b.png")
    (tmp_path / "c.png").write_bytes(b"not a png at all")
    data = _png_bytes(_noise(9, (64, 64, 3)))
    (tmp_path / "d.png").write_bytes(data[: len(data) // 3])
    readable, gray, bad = scan_images(list_image_files(tmp_path))
    assert [p.name for p in readable] == ["a.png", "b.png"]
    assert [p.name for p in gray] == ["b.png"]
    assert [(b.path.name, b.reason.split(" ")[0]) for b in bad] == [("c.png", "not"), ("d.png", "truncated")]


def test_scan_folder_reports_everything(tmp_path: Path) -> None:
    Image.fromarray(_noise(10)).save(tmp_path / "ok.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8junk")
    scan = scan_folder(tmp_path)
    assert [p.name for p in scan.files] == ["bad.jpg", "ok.png"]
    assert [p.name for p in scan.readable] == ["ok.png"]
    assert [b.path.name for b in scan.bad] == ["bad.jpg"]


def test_load_mask_union_and_empty(tmp_path: Path) -> None:
    first = np.zeros((16, 16), np.uint8)
    first[:4, :4] = 255
    second = np.zeros((16, 16), np.uint8)
    second[10:, 10:] = 254  # LOCO encodes defect types as different non-zero grey values
    Image.fromarray(first).save(tmp_path / "000.png")
    Image.fromarray(second).save(tmp_path / "001.png")
    mask = load_mask([tmp_path / "000.png", tmp_path / "001.png"], (16, 16))
    assert mask.dtype == bool and mask.shape == (16, 16)
    assert mask.sum() == 16 + 36
    assert mask[0, 0] and mask[15, 15] and not mask[8, 8]
    empty = load_mask([], (5, 7))
    assert empty.shape == (5, 7) and not empty.any()


def test_load_mask_resizes_nearest(tmp_path: Path) -> None:
    small = np.zeros((8, 8), np.uint8)
    small[:4, :] = 255
    Image.fromarray(small).save(tmp_path / "m.png")
    mask = load_mask([tmp_path / "m.png"], (16, 32))
    assert mask.shape == (16, 32)
    assert mask[:8].all() and not mask[8:].any()  # top half exactly, no blurred edge


def test_load_mask_rgba_ignores_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :, 3] = 255
    rgba[2, 3, :3] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "m.png")
    mask = load_mask([tmp_path / "m.png"], (16, 16))
    assert mask.sum() == 1 and mask[2, 3]


def test_load_mask_unreadable_raises(tmp_path: Path) -> None:
    (tmp_path / "m.png").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match="m.png"):
        load_mask([tmp_path / "m.png"], (16, 16))
