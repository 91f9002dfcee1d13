"""Atomic file writers: a reader sees either the old file or the complete new one, never half.

Each writer serialises into a temporary file in the target's folder (same file system, so the
final ``os.replace`` is an atomic rename), flushes and fsyncs it, then renames it over the target.
On any error the temporary file is removed and the previous target is left untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: the store and the CLI start without it
    import torch


def _read_umask() -> int:
    # Linux reports the umask without changing it; os.umask can only read it by setting it,
    # which would briefly affect files other threads create.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_read_umask()
"""Mode of written files: what a plain ``open()`` would give (mkstemp alone gives 0600)."""


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) on Windows.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_replace(path: Path, fill: Callable[[str], None]) -> None:
    """Let ``fill`` write a temp file (by name) next to ``path``, fsync it, move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fill(tmp_name)
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp_name, _FILE_MODE)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Atomically replace ``path`` with what ``write`` writes to a binary handle."""

    def fill(tmp_name: str) -> None:
        with open(tmp_name, "wb") as handle:
            write(handle)

    _atomic_replace(path, fill)


def json_default(obj: Any) -> Any:
    """JSON fallback for values metrics and settings commonly hold: numpy scalars/arrays, paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating parent folders."""
    _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON; a value JSON cannot hold fails before any write."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=json_default)
    atomic_write_text(path, text + "\n")


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Save ``array`` in .npy format (no pickled objects, so it loads with ``allow_pickle=False``)."""
    data = np.asarray(array)
    _atomic_write(path, lambda handle: np.save(handle, data, allow_pickle=False))


def _png_ready(array: np.ndarray) -> np.ndarray:
    data = np.asarray(array)
    if data.dtype == np.bool_:
        # Masks are 0/255 PNGs throughout the project (spec section 3).
        data = data.astype(np.uint8) * 255
    if data.dtype != np.uint8:
        raise ValueError(f"PNG needs a uint8 (or bool) array, got {data.dtype}")
    if not (data.ndim == 2 or (data.ndim == 3 and data.shape[2] in (3, 4))):
        raise ValueError(f"PNG needs an HxW, HxWx3 or HxWx4 array, got shape {data.shape}")
    return np.ascontiguousarray(data)


def atomic_save_png(path: Path, array: np.ndarray) -> None:
    """Save a uint8 HxW (grey) or HxWx3 (RGB) array as PNG; bool arrays are written as 0/255."""
    from PIL import Image

    image = Image.fromarray(_png_ready(array))
    _atomic_write(path, lambda handle: image.save(handle, format="PNG"))


def atomic_save_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Save tensors (moved to CPU) with string metadata as a .safetensors file."""
    from safetensors.torch import save_file

    meta = dict(metadata or {})
    bad = sorted(k for k, v in meta.items() if not (isinstance(k, str) and isinstance(v, str)))
    if bad:
        raise ValueError(f"safetensors metadata must map str to str; bad entries: {bad}")
    ready = unshared_tensors({name: t.detach().to("cpu").contiguous() for name, t in tensors.items()})
    # save_file streams to disk: no second in-memory copy of a large checkpoint.
    _atomic_replace(path, lambda tmp_name: save_file(ready, tmp_name, metadata=meta or None))


def unshared_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` ready for safetensors: those sharing memory with another copied, the rest as they are."""
    # safetensors refuses tensors sharing memory (tied weights, views of one buffer), which
    # state dicts often hold; copy only those, so large unshared banks are not duplicated.
    owners: dict[int, int] = {}
    for tensor in tensors.values():
        key = tensor.untyped_storage().data_ptr()
        owners[key] = owners.get(key, 0) + 1
    return {
        name: t.clone() if owners[t.untyped_storage().data_ptr()] > 1 else t
        for name, t in tensors.items()
    }


def load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a .safetensors file onto the CPU; returns (tensors, metadata)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # the library raises its own error type for damaged files
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from exc
    return tensors, metadata


__all__ = [
    "atomic_save_npy",
    "atomic_save_png",
    "atomic_save_safetensors",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "json_default",
    "load_safetensors",
]
