"""Export the stored label maps (``pseudo-labels --export DIR``, the Clusters page's download)."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from pipeline.errors import NotReadyError
from pipeline.pseudolabels import store
from pipeline.workspace import Workspace
from pipeline.workspace.files import atomic_save_png


def export_names(image_keys: list[str]) -> dict[str, str]:
    """Output path (relative, '/'-separated) of each image's label map.

    The image's own file name with a ``.png`` suffix (a label map is always a PNG); when two
    images would get the same name, every map goes under its ``<split>/<kind>/`` folders instead.
    """
    flat = {key: PurePosixPath(key).with_suffix(".png").name for key in image_keys}
    if len(set(flat.values())) == len(flat):
        return flat
    return {key: PurePosixPath(key).with_suffix(".png").as_posix() for key in image_keys}


def export_label_maps(ws: Workspace, category: str, out_dir: Path | str) -> list[Path]:
    """Write each training image's label map as an 8-bit PNG (0 = background) into ``out_dir``;
    returns the written files in image order."""
    keys = list(store.read_json(ws, category, "run.json").get("images", {}))
    if not keys:
        raise NotReadyError(f"no pseudo-labels for category {category!r} yet; run pseudo-labels first")
    written = []
    for key, name in export_names(keys).items():
        label_map = store.load_label_map(ws, category, key)
        if label_map is None:
            raise NotReadyError(f"label map of {key} is missing; run pseudo-labels on {category!r} again")
        path = Path(out_dir).joinpath(*PurePosixPath(name).parts)
        atomic_save_png(path, label_map)
        written.append(path)
    return written


def label_maps_zip(ws: Workspace, category: str) -> bytes:
    """The exported label maps as one zip (same names as ``export_label_maps``), for a download."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(buffer, "w") as archive:
        for path in export_label_maps(ws, category, folder):
            archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()
