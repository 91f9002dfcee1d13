"""Data uploaded from a browser: unpacked into the workspace, checked, then registered on confirmation.

A person at another desk cannot type a folder of the server, so the Workspace & data page takes
a zip (any layout the importer reads) or loose image files. The files are stored inside the
workspace so nothing depends on where the browser runs. Three steps, like the folder import:

1. ``stage_upload`` unpacks into a hidden temporary folder ``<workspace>/.upload-*`` and plans
   the import (reads every image, writes nothing else). Any refusal deletes that folder, so
   the workspace is as it was.
2. A person reads ``StagedUpload.summary()``.
3. ``commit_upload`` renames the folder into ``<workspace>/uploads/<name>`` (LOCO and plain
   folders, registered in place) or converts it into ``<workspace>/data/<name>`` (image + mask
   and YOLO sets, as a folder import does), then registers the category. ``discard_upload``
   drops a staged upload nobody imported; stale ones are swept at the next upload.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from pipeline.data.discover import LAYOUTS_HELP, find_categories, load_category
from pipeline.data.images import IMAGE_SUFFIXES
from pipeline.data.import_plan import IN_PLACE_LAYOUTS, ImportPlan, in_place_plan
from pipeline.data.importer import WORKSPACE_DATA_FOLDER, detect_layout, import_into_workspace, plan_converted
from pipeline.data.safe_zip import (
    DEFAULT_LIMITS,
    UploadError,
    UploadLimits,
    check_free_space,
    check_upload_size,
    unpack_zip,
)
from pipeline.data.samples import DataError
from pipeline.workspace import Workspace, WorkspaceError
from pipeline.workspace.db import check_name
from pipeline.workspace.records import CategoryRecord

UPLOADS_FOLDER = "uploads"
"""LOCO and plain-folder uploads are stored as ``<workspace>/uploads/<category>``."""

STAGING_PREFIX = ".upload-"
"""Hidden temporary folders in the workspace root; hidden, so no category finder lists them."""

STALE_SECONDS = 24 * 3600
"""A staged upload older than this was abandoned (browser closed before Import) and is deleted."""

ZIP_SUFFIX = ".zip"


@dataclass(frozen=True)
class UploadedFile:
    """One file as the browser sent it.

    Attributes:
        name: the file name given by the browser (any folders in it are dropped).
        data: its bytes.
    """

    name: str
    data: bytes


@dataclass(frozen=True)
class StagedUpload:
    """An upload unpacked and planned, waiting for the person's confirmation.

    Attributes:
        name: the category it becomes.
        label: the upload in words (``"parts.zip"``, ``"3 image files"``), for messages.
        staging: the hidden temporary folder holding it.
        root: the unpacked set inside ``staging``.
        plan: what reading it found, as for a folder import.
        target: where it will be stored in the workspace.
    """

    name: str
    label: str
    staging: Path
    root: Path
    plan: ImportPlan

    @property
    def target(self) -> Path:
        folder = UPLOADS_FOLDER if self.plan.in_place else WORKSPACE_DATA_FOLDER
        return self.staging.parent / folder / self.name

    def summary(self) -> str:
        """The folder import's summary, naming the upload instead of its temporary folder."""
        text = self.plan.summary().replace(str(self.root), self.label)
        text = text.replace("registered in place (the files stay where they are)", "kept as uploaded (not converted)")
        return f"{text}\n  stored in {self.target}"


def _clean_name(name: str) -> str:
    """The browser's file name without any folder (some browsers send ``C:\\...\\a.png``)."""
    return PurePath(name.replace("\\", "/")).name


def _label(files: Sequence[UploadedFile]) -> str:
    if len(files) == 1:
        return _clean_name(files[0].name)
    return f"{len(files)} image files"


def _is_zip(file: UploadedFile) -> bool:
    return _clean_name(file.name).lower().endswith(ZIP_SUFFIX)


def _check_kinds(files: Sequence[UploadedFile]) -> None:
    """One zip, or image files only: a zip beside images would leave the images' place unclear."""
    if not files:
        raise UploadError("choose a zip or image files to upload")
    zips = [f for f in files if _is_zip(f)]
    if zips and len(files) > 1:
        raise UploadError(f"upload one zip on its own (got {len(files)} files, {len(zips)} zip); "
                          "zip several sets separately")
    if zips:
        return
    others = [_clean_name(f.name) for f in files if PurePath(_clean_name(f.name)).suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise UploadError(f"not an image or zip file: {', '.join(others[:5])}; upload a .zip or images ({kinds})")


def _checked_name(workspace: Workspace, name: str) -> str:
    """A new category name whose storage folders are free; refused before anything is written."""
    try:
        check_name(name, "category name")
    except WorkspaceError as err:
        raise UploadError(str(err)) from None
    if name.startswith("."):
        raise UploadError(f"category name {name!r} cannot start with '.'")
    if any(record.name == name for record in workspace.categories()):
        raise UploadError(f"category {name!r} already exists in this workspace; choose another name")
    stored = workspace.path / UPLOADS_FOLDER / name
    if stored.exists() or stored.is_symlink():
        raise UploadError(f"{stored} is left from an earlier upload; delete it or choose another name")
    return name


def _write_loose(files: Sequence[UploadedFile], root: Path) -> None:
    """Loose images become ``good/``: without a folder there is no way to tell a defect."""
    good = root / "good"
    good.mkdir(parents=True)
    for file in files:
        try:
            with (good / _clean_name(file.name)).open("xb") as out:
                out.write(file.data)
        except FileExistsError:
            raise UploadError(f"two files are named {_clean_name(file.name)!r}; rename one") from None


def _plan(root: Path, name: str, label: str) -> ImportPlan:
    """Plan the unpacked set as one category, with messages naming the upload, not the temp folder."""
    try:
        layout = detect_layout(root)
        several = find_categories(root) if layout in IN_PLACE_LAYOUTS else []
        if not several:
            if layout in IN_PLACE_LAYOUTS:
                return in_place_plan(name, root, load_category(root))
            return plan_converted(root, layout, name)
    except DataError as err:
        message = str(err).replace(str(root), label)
        if "is not a category folder" in message:
            message = f"{label} is not in a layout the importer reads. {LAYOUTS_HELP}"
        raise UploadError(message) from None
    raise UploadError(f"{label} holds {len(several)} categories ({', '.join(several)}); upload one category per zip")


def sweep_stale(workspace: Workspace, now: float | None = None) -> list[Path]:
    """Delete staged uploads older than ``STALE_SECONDS`` (their browser never pressed Import)."""
    now = time.time() if now is None else now
    gone = []
    for folder in workspace.path.glob(STAGING_PREFIX + "*"):
        if folder.is_dir() and now - folder.stat().st_mtime > STALE_SECONDS:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


def _default_name(files: Sequence[UploadedFile], top: str | None) -> str:
    if top:
        return top
    if len(files) == 1 and _is_zip(files[0]):
        return PurePath(_clean_name(files[0].name)).stem
    raise UploadError("enter a category name for the uploaded image files")


def _unpack(files: Sequence[UploadedFile], root: Path, label: str, limits: UploadLimits) -> str | None:
    if _is_zip(files[0]):
        return unpack_zip(label, files[0].data, root, limits)
    check_free_space(label, root, sum(len(f.data) for f in files))
    _write_loose(files, root)
    return None


def stage_upload(
    workspace: Workspace, files: Sequence[UploadedFile], name: str | None = None, limits: UploadLimits = DEFAULT_LIMITS
) -> StagedUpload:
    """Unpack and plan an upload (a zip, or image files as one category of good images).

    Raises ``UploadError`` with one sentence for each refusal; the workspace is then unchanged.
    """
    _check_kinds(files)
    label = _label(files)
    check_upload_size(label, sum(len(f.data) for f in files), limits)
    if name is not None:
        _checked_name(workspace, name)
    sweep_stale(workspace)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=workspace.path))
    staged = None
    try:
        root = staging / "upload"
        root.mkdir()
        top = _unpack(files, root, label, limits)
        name = _checked_name(workspace, name or _default_name(files, top))
        staged = StagedUpload(name, label, staging, root, _plan(root, name, label))
    finally:
        if staged is None:
            shutil.rmtree(staging, ignore_errors=True)
    return staged


def _store_in_place(workspace: Workspace, staged: StagedUpload) -> CategoryRecord:
    """Rename the unpacked folder to ``uploads/<name>`` and register it; undone if registering fails."""
    target = staged.target
    target.parent.mkdir(exist_ok=True)
    staged.root.rename(target)
    record = None
    try:
        record = workspace.add_category(staged.name, target, staged.plan.layout)
    finally:
        if record is None:
            shutil.rmtree(target, ignore_errors=True)
    return record


def commit_upload(workspace: Workspace, staged: StagedUpload) -> CategoryRecord:
    """Store the checked upload in the workspace and register it; the temporary folder goes either way."""
    try:
        if staged.staging.parent.resolve() != workspace.path.resolve():
            raise UploadError(f"{staged.label} was checked for another workspace; check it again here")
        if not staged.root.is_dir():
            raise UploadError(f"the checked upload {staged.label} is gone (workspace cleaned?); upload it again")
        _checked_name(workspace, staged.name)  # another session may have taken the name since
        if staged.plan.in_place:
            return _store_in_place(workspace, staged)
        return import_into_workspace(workspace, staged.plan)
    finally:
        discard_upload(staged)


def discard_upload(staged: StagedUpload) -> None:
    """Delete a staged upload that will not be imported."""
    shutil.rmtree(staged.staging, ignore_errors=True)


__all__ = [
    "STAGING_PREFIX",
    "UPLOADS_FOLDER",
    "StagedUpload",
    "UploadError",
    "UploadLimits",
    "UploadedFile",
    "commit_upload",
    "discard_upload",
    "stage_upload",
    "sweep_stale",
]
