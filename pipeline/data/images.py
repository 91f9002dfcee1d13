"""Safe image loading: every file is decoded fully once, and failures become readable messages.

A dataset from a production line holds whatever the camera software wrote: 16-bit grayscale
TIFFs, palette PNGs, RGBA screenshots, half-copied files. Everything here turns such files into
uint8 RGB arrays or a plain-words reason why not, so no later stage ever sees a PIL error.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.data.samples import BadFile
from pipeline.errors import UserError

IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
"""File name endings treated as images (compared lower-case)."""

MAX_IMAGE_BYTES = 64 * 2**20
"""Largest image accepted from memory (``load_rgb_bytes``): a camera frame is a few MiB; more is a wrong file."""

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
"""Integer modes whose values span 0..65535 (PIL opens 16-bit PNG/TIFF files in these)."""

_GRAY_MODES = frozenset({"1", "L", "LA", "F"}) | _SIXTEEN_BIT_MODES
"""Single-channel modes (alpha aside). Palette images are not here: their palette has colour."""


class ImageReadError(UserError, ValueError):
    """A file that cannot be used as an image.

    Attributes:
        path: the offending file.
        reason: why, in plain words (``"not an image"``, ``"truncated"``, ...).
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    """What a full decode of one image file found.

    Attributes:
        path: the file.
        width: width in pixels.
        height: height in pixels.
        mode: PIL mode on disk (``"RGB"``, ``"L"``, ``"I;16"``, ``"P"``, ...).
        is_grayscale: the file holds a single intensity channel (alpha aside); it still loads
            as RGB but colour cues are lost.
    """

    path: Path
    width: int
    height: int
    mode: str
    is_grayscale: bool


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name; hidden files skipped; missing -> []."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = [
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    ]
    return sorted(files, key=lambda p: p.name)


def _decode(source: Path | BinaryIO) -> Image.Image:
    """``Image.open`` + ``load``, closing the file handle when decoding fails."""
    image = Image.open(source)
    try:
        image.load()
    except BaseException:
        image.close()
        raise
    return image


def _open_decoded(path: Path) -> Image.Image:
    """Open and fully decode ``path`` (a lazy open would miss truncated files)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    return _decode_named(path, path)


def _decode_named(source: Path | BinaryIO, path: Path) -> Image.Image:
    """Fully decode ``source`` (a file or bytes in memory); every failure an ``ImageReadError`` naming ``path``."""
    try:
        # Pillow warns (not raises) below its hard decompression-bomb limit; treat both as too large.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _decode(source)
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image (format not recognised)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(path, "image too large (exceeds Pillow's pixel limit)") from None
    except PermissionError:
        raise ImageReadError(path, "no permission to read the file") from None
    except OSError as exc:
        text = str(exc).lower()
        if "truncated" in text or "broken data stream" in text or "unexpected end" in text:
            raise ImageReadError(path, "truncated or partly written file") from None
        raise ImageReadError(path, f"cannot decode image ({exc})") from None
    except (ValueError, SyntaxError, EOFError) as exc:
        # Pillow's plugins raise these for damaged headers and chunks.
        raise ImageReadError(path, f"damaged image data ({exc})") from None
    if image.width < 1 or image.height < 1:
        image.close()
        raise ImageReadError(path, "image has no pixels")
    return image


def _is_grayscale(image: Image.Image) -> bool:
    return image.mode in _GRAY_MODES


def probe_image(path: Path) -> ImageInfo:
    """Decode ``path`` completely and describe it; raises ``ImageReadError``."""
    image = _open_decoded(path)
    try:
        return ImageInfo(
            path=Path(path),
            width=image.width,
            height=image.height,
            mode=image.mode,
            is_grayscale=_is_grayscale(image),
        )
    finally:
        image.close()


def _wide_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16-bit / 32-bit-int / float plane to uint8."""
    values = values.astype(np.float64)
    if mode == "F":
        # Float images come either as 0..1 or as 0..255 intensities.
        scale = 255.0 if np.nanmax(values, initial=0.0) <= 1.0 else 1.0
        values = np.nan_to_num(values) * scale
    else:
        values = np.clip(values, 0, 65535) / 257.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert any PIL mode to uint8 ``(H, W, 3)``; alpha is dropped, not composited."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "F":
        plane = _wide_to_uint8(np.asarray(image), mode)
        return np.repeat(plane[:, :, None], 3, axis=2)
    if mode in ("RGBA", "RGBa", "RGBX"):
        return np.ascontiguousarray(np.asarray(image)[:, :, :3])
    if mode in ("LA", "La"):
        plane = np.asarray(image)[:, :, 0]
        return np.repeat(plane[:, :, None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def load_rgb(path: Path) -> np.ndarray:
    """Load any readable image as uint8 RGB ``(H, W, 3)``; raises ``ImageReadError``.

    EXIF orientation is deliberately ignored: masks and pixel coordinates in datasets refer to
    the stored pixel grid, and rotating only the image would misalign them.
    """
    return _rgb_of(_open_decoded(path), Path(path))


def load_rgb_bytes(data: bytes, name: str, max_bytes: int = MAX_IMAGE_BYTES) -> np.ndarray:
    """``load_rgb`` for an image held in memory (an upload, a camera shot) under the same rules;
    ``name`` only labels the error message. Raises ``ImageReadError``."""
    path = Path(name)
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    if len(data) > max_bytes:
        raise ImageReadError(path, f"file too large ({len(data) / 2**20:.1f} MiB; at most {max_bytes / 2**20:.0f} MiB)")
    return _rgb_of(_decode_named(io.BytesIO(data), path), path)


def _rgb_of(image: Image.Image, path: Path) -> np.ndarray:
    """The first frame of a decoded image as uint8 RGB, closing the image."""
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        try:
            array = _to_rgb_array(image)
        except (ValueError, OSError) as exc:
            raise ImageReadError(path, f"unsupported colour mode {image.mode} ({exc})") from None
    finally:
        image.close()
    return array


def mask_plane(path: Path) -> np.ndarray:
    """One mask file as bool at its own size; any non-zero value is defect (LOCO uses several grey
    values). Raises ``ImageReadError``."""
    image = _open_decoded(path)
    try:
        if image.mode in ("P", "PA"):
            # Palette index 0 may be any colour; the palette's brightness is what the user sees.
            image = image.convert("RGB")
        array = np.asarray(image)
    finally:
        image.close()
    if array.ndim == 3:
        channels = array.shape[2]
        if channels in (2, 4):  # drop alpha, which is usually 255 everywhere
            array = array[:, :, : channels - 1]
        array = array.max(axis=2)
    return array > 0


def load_mask(paths: Sequence[Path], shape: tuple[int, int]) -> np.ndarray:
    """Union of mask files as bool ``(H, W)``; ``[]`` gives all False.

    A mask of another size is resized with nearest neighbour so a defect stays a hard region.
    Raises ``ImageReadError`` for an unreadable mask.
    """
    height, width = int(shape[0]), int(shape[1])
    union = np.zeros((height, width), dtype=bool)
    for path in paths:
        plane = mask_plane(Path(path))
        if plane.shape != (height, width):
            resized = Image.fromarray(plane.astype(np.uint8) * 255).resize(
                (width, height), Image.Resampling.NEAREST
            )
            plane = np.asarray(resized) > 0
        union |= plane
    return union


def scan_images(paths: Sequence[Path]) -> tuple[list[Path], list[Path], list[BadFile]]:
    """Probe every file: ``(readable, grayscale among readable, bad)``, each in input order."""
    readable: list[Path] = []
    grayscale: list[Path] = []
    bad: list[BadFile] = []
    for path in paths:
        try:
            info = probe_image(path)
        except ImageReadError as exc:
            bad.append(BadFile(path=Path(path), reason=exc.reason))
            continue
        readable.append(Path(path))
        if info.is_grayscale:
            grayscale.append(Path(path))
    return readable, grayscale, bad


@dataclass(frozen=True)
class FolderScan:
    """Result of probing the image files of one folder.

    Attributes:
        folder: the folder scanned.
        files: image-suffixed files found, sorted by name.
        readable: files that decoded, sorted.
        grayscale: readable single-channel files, sorted.
        bad: files that failed, with reasons.
    """

    folder: Path
    files: tuple[Path, ...]
    readable: tuple[Path, ...]
    grayscale: tuple[Path, ...]
    bad: tuple[BadFile, ...]


def scan_folder(folder: Path) -> FolderScan:
    """List and probe the images directly inside ``folder`` (missing folder -> empty scan)."""
    files = list_image_files(folder)
    readable, grayscale, bad = scan_images(files)
    return FolderScan(Path(folder), tuple(files), tuple(readable), tuple(grayscale), tuple(bad))


def suffix_list() -> str:
    """Accepted suffixes for messages, PNG first because the datasets use it."""
    ordered = sorted(IMAGE_SUFFIXES, key=lambda s: (s != ".png", s))
    return ", ".join(ordered)


def no_images_reason(scan: FolderScan) -> str:
    """Why a scanned folder gave nothing usable, naming the folder (for ``DataError`` messages)."""
    if not scan.folder.is_dir():
        return f"{scan.folder} does not exist"
    if not scan.files:
        return f"no images in {scan.folder} (looked for {suffix_list()})"
    first = scan.bad[0]
    return (
        f"no readable images in {scan.folder}: all {len(scan.files)} files failed "
        f"(e.g. {first.path.name}: {first.reason})"
    )
