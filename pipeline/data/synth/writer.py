"""Writes a synthetic category in the MVTec LOCO AD layout, all-or-nothing.

A category is written into a hidden sibling folder and renamed into place once complete, so a
killed run never leaves a half-written category that looks like a finished one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data.samples import LOCO_KIND_FOLDERS
from pipeline.data.synth.render import Rendered

COMPONENTS_DIR = "components"
GROUND_TRUTH_DIR = "ground_truth"
INFO_FILE = "synth_info.json"


def image_relpath(split: str, kind: str, index: int) -> str:
    """``<split>/<kind folder>/NNN.png``, the image's path inside the category folder."""
    return f"{split}/{LOCO_KIND_FOLDERS[kind]}/{index:03d}.png"


def save_png(path: Path, array: np.ndarray) -> None:
    """Save uint8 ``(h, w)`` or ``(h, w, 3)`` as PNG.

    PIL writes no timestamps, so the bytes are reproducible. Compression level 1: zlib dominated
    the run time, and higher levels save under 20% on noisy images.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", compress_level=1)


def write_sample(root: Path, split: str, kind: str, index: int, rendered: Rendered) -> None:
    """Write the image, its component map and (for anomalies) its ground-truth masks."""
    rel = image_relpath(split, kind, index)
    save_png(root / rel, rendered.image)
    save_png(root / COMPONENTS_DIR / rel, rendered.components)
    if kind == "good":
        return
    if not rendered.masks:
        raise RuntimeError(f"{rel}: anomalous image rendered without a ground-truth mask")
    folder = root / GROUND_TRUTH_DIR / LOCO_KIND_FOLDERS[kind] / f"{index:03d}"
    for k, mask in enumerate(rendered.masks):
        save_png(folder / f"{k:03d}.png", mask)


def write_info(root: Path, info: dict) -> None:
    """Write ``synth_info.json`` (sorted keys: identical settings give identical bytes)."""
    (root / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _clear_stale(parent: Path, name: str) -> None:
    """Remove staging folders left by killed runs (their process no longer exists)."""
    for folder in parent.glob(f".{name}.*-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if folder.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``final``, on error it is removed.

    An existing ``final`` is only moved aside after the new folder is complete, and deleted after
    the new one is in place.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(final.parent, final.name)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
