"""Unpack an uploaded zip without trusting it: checked names, sizes and counts before any byte is written.

A zip from a browser can be anything: a renamed text file, an archive whose names climb out of
the target (``../../etc``, ``/home/x``), symbolic links, or a few kilobytes that inflate to
terabytes. Every member is checked from the central directory first, so a refused archive
writes nothing; the copy then counts the bytes it really inflates, since the directory can lie.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePosixPath

from pipeline.data.images import IMAGE_SUFFIXES
from pipeline.data.samples import DataError

MB = 1024 * 1024

JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
"""File names operating systems add to folders (compared lower-case); never part of a data set."""

JUNK_FOLDERS = frozenset({"__macosx"})
"""Folders of resource forks macOS adds to zips; everything under them is skipped."""

LAYOUT_FOLDERS = frozenset({"good", "bad", "images", "masks", "labels", "train", "validation", "test", "ground_truth"})
"""Folder names that carry a layout's meaning: a zip holding only ``good/`` is not unwrapped."""

_SUPPORTED_COMPRESSION = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
_CHUNK = MB


class UploadError(DataError):
    """An upload that cannot be used (not a zip, too large, unsafe, no images, name taken).

    A ``DataError`` (so a ``UserError``): the one-line message says what is wrong and what to do.
    """


@dataclass(frozen=True)
class UploadLimits:
    """How much an upload may hold; refusing early keeps a bad archive from filling the disk.

    Attributes:
        max_upload_bytes: the bytes received (the zip, or all loose files together).
        max_unpacked_bytes: the zip's content once inflated.
        max_files: files in the zip (after skipping folders and system files).
    """

    max_upload_bytes: int = 500 * MB
    max_unpacked_bytes: int = 2048 * MB
    max_files: int = 50_000


DEFAULT_LIMITS = UploadLimits()
"""500 MB in, 2 GB unpacked, 50,000 files: a few large image sets, never a full disk."""


@dataclass(frozen=True)
class ZipMember:
    """One file of the zip that will be written.

    Attributes:
        info: its entry in the zip's central directory.
        path: its checked relative path (after unwrapping a single top folder).
    """

    info: zipfile.ZipInfo
    path: PurePosixPath


def megabytes(n_bytes: int) -> str:
    return f"{n_bytes / MB:.0f} MB" if n_bytes >= MB else f"{n_bytes} bytes"


def check_upload_size(label: str, n_bytes: int, limits: UploadLimits) -> None:
    if n_bytes > limits.max_upload_bytes:
        raise UploadError(f"{label} is {megabytes(n_bytes)}; uploads are limited to "
                          f"{megabytes(limits.max_upload_bytes)} (split the set or import it as a folder)")


def is_junk(path: PurePosixPath) -> bool:
    """System files (``.DS_Store``, ``Thumbs.db``, AppleDouble ``._x``) and ``__MACOSX/``."""
    if any(part.lower() in JUNK_FOLDERS for part in path.parts[:-1]):
        return True
    return path.name.lower() in JUNK_NAMES or path.name.startswith("._")


def safe_member_path(label: str, name: str) -> PurePosixPath:
    """The member's path relative to the target; absolute or climbing (``..``) paths are refused."""
    text = name.replace("\\", "/")  # zips written on Windows sometimes use backslashes
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise UploadError(f"{label} is refused: it holds an absolute path ({name!r}); zip the folder itself")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UploadError(f"{label} is refused: the path {name!r} points outside the folder ('..')")
    return PurePosixPath(*parts)


def _checked_entry(label: str, info: zipfile.ZipInfo) -> None:
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UploadError(f"{label} is refused: {info.filename!r} is a symbolic link; zip the files themselves")
    if info.flag_bits & 0x1:
        raise UploadError(f"{label} is refused: {info.filename!r} is password-protected; zip it without a password")
    if info.compress_type not in _SUPPORTED_COMPRESSION:
        raise UploadError(f"{label} uses a compression method this workbench cannot read "
                          f"({info.compress_type}); zip it again with the standard (deflate) method")


def _check_totals(label: str, members: list[ZipMember], limits: UploadLimits) -> None:
    if len(members) > limits.max_files:
        raise UploadError(f"{label} holds {len(members)} files; at most {limits.max_files} are accepted")
    total = sum(m.info.file_size for m in members)
    if total > limits.max_unpacked_bytes:
        raise UploadError(f"{label} would unpack to {megabytes(total)}; at most "
                          f"{megabytes(limits.max_unpacked_bytes)} are accepted")
    if not any(m.path.suffix.lower() in IMAGE_SUFFIXES for m in members):
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        what = f"{len(members)} file(s), none of them an image" if members else "no files"
        raise UploadError(f"{label} holds no images ({what}; images end in {kinds})")


def _unwrapped(members: list[ZipMember]) -> tuple[list[ZipMember], str | None]:
    """Strip a single top folder (``screws/train/good/...`` -> ``train/good/...``) and return its name.

    A top folder named like a layout folder (``good/``, ``images/``) is the layout, and stays.
    """
    tops = {m.path.parts[0] for m in members}
    if len(tops) != 1 or any(len(m.path.parts) < 2 for m in members):
        return members, None
    top = tops.pop()
    if top.lower() in LAYOUT_FOLDERS:
        return members, None
    return [ZipMember(m.info, PurePosixPath(*m.path.parts[1:])) for m in members], top


def open_zip(label: str, data: bytes) -> zipfile.ZipFile:
    """The archive, or one clear message when the bytes are not a zip (a renamed file, a cut-off upload)."""
    try:
        return zipfile.ZipFile(BytesIO(data))
    except zipfile.BadZipFile:
        raise UploadError(f"{label} is not a zip archive (another file renamed, or cut off while uploading); "
                          "upload a .zip or the image files") from None


def read_members(label: str, archive: zipfile.ZipFile, limits: UploadLimits) -> tuple[list[ZipMember], str | None]:
    """Every file to write, checked, and the name of the unwrapped top folder (``None`` if none).

    Reads only the central directory: a refused archive has written nothing yet.
    """
    members: list[ZipMember] = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        path = safe_member_path(label, info.filename)
        if not path.parts or is_junk(path):
            continue
        _checked_entry(label, info)
        members.append(ZipMember(info, path))
    _check_totals(label, members, limits)
    return _unwrapped(members)


def _copy_member(label: str, archive: zipfile.ZipFile, member: ZipMember, dest: Path, budget: int) -> int:
    """Inflate one member to ``dest`` (which must not exist); returns the bytes written."""
    written = 0
    with archive.open(member.info) as source, open(dest, "xb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > member.info.file_size or written > budget:
                raise UploadError(f"{label} is refused: {member.info.filename!r} inflates beyond its declared size")
            out.write(chunk)
    return written


def extract_members(label: str, archive: zipfile.ZipFile, members: list[ZipMember], root: Path,
                    limits: UploadLimits) -> None:
    """Write ``members`` under ``root`` (an empty folder the caller deletes when this raises)."""
    budget = limits.max_unpacked_bytes
    inside = root.resolve()
    for member in members:
        dest = root.joinpath(*member.path.parts)
        if not dest.resolve().is_relative_to(inside):  # cannot happen after safe_member_path; kept as a guard
            raise UploadError(f"{label} is refused: {member.info.filename!r} points outside the folder")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            budget -= _copy_member(label, archive, member, dest, budget)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise UploadError(f"{label} lists {member.info.filename!r} twice (or as both a file and a "
                              "folder); zip the folder again") from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise UploadError(f"{label} is damaged ({member.info.filename}: {err}); upload it again") from None


def unpack_zip(label: str, data: bytes, root: Path, limits: UploadLimits = DEFAULT_LIMITS) -> str | None:
    """Check then unpack the zip ``data`` into the empty folder ``root``; returns the unwrapped top folder."""
    with open_zip(label, data) as archive:
        members, top = read_members(label, archive, limits)
        check_free_space(label, root, sum(m.info.file_size for m in members))
        extract_members(label, archive, members, root, limits)
    return top


def check_free_space(label: str, folder: Path, n_bytes: int) -> None:
    free = shutil.disk_usage(folder).free
    if n_bytes > free:
        raise UploadError(f"{label} needs {megabytes(n_bytes)} but the workspace disk has {megabytes(free)} free")


__all__ = [
    "DEFAULT_LIMITS",
    "JUNK_FOLDERS",
    "JUNK_NAMES",
    "LAYOUT_FOLDERS",
    "MB",
    "UploadError",
    "UploadLimits",
    "ZipMember",
    "check_upload_size",
    "is_junk",
    "read_members",
    "safe_member_path",
    "unpack_zip",
]
