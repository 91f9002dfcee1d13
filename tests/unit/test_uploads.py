"""Uploads from the browser: safe unpacking, one clear refusal each, nothing half-written, stored in the workspace."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data.discover import load_category
from pipeline.data.uploads import (
    STAGING_PREFIX, UploadedFile, UploadError, UploadLimits, commit_upload, discard_upload, stage_upload,
    sweep_stale,
)
from pipeline.workspace import Workspace

RNG = np.random.default_rng(0)


def png(seed: int = 0, size: tuple[int, int] = (12, 16), gray: bool = False) -> bytes:
    shape = size if gray else (*size, 3)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(RNG.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()[:200]


def make_zip(files: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def loco_files(prefix: str = "") -> dict[str, bytes]:
    mask = io.BytesIO()
    Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), ((2, 6), (4, 8)))).save(mask, format="PNG")
    return {
        f"{prefix}train/good/000.png": png(1), f"{prefix}train/good/001.png": png(2),
        f"{prefix}validation/good/000.png": png(3), f"{prefix}test/good/000.png": png(4),
        f"{prefix}test/structural_anomalies/000.png": png(5),
        f"{prefix}ground_truth/structural_anomalies/000/000.png": mask.getvalue(),
    }


def good_bad_files() -> dict[str, bytes]:
    files = {f"good/g{i}.png": png(i) for i in range(4)}
    files.update({"bad/b0.png": png(9), "good/broken.jpg": truncated_jpeg()})
    return files


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "ws")


def snapshot(ws: Workspace) -> tuple[list[str], list[str]]:
    """Every path in the workspace but the database, and the category names."""
    paths = [p for p in ws.path.rglob("*") if not p.name.startswith("workspace.sqlite")]
    files = sorted(str(p.relative_to(ws.path)) for p in paths)
    return files, [c.name for c in ws.categories()]


def upload(ws: Workspace, files: dict[str, bytes], name: str | None = None, **limits):
    staged = stage_upload(ws, [UploadedFile(n, d) for n, d in files.items()], name, UploadLimits(**limits))
    return staged, commit_upload(ws, staged)


def upload_zip(ws, files, name="upload.zip", **kwargs):
    return upload(ws, {name: make_zip(files)}, **kwargs)


def test_a_loco_zip_with_one_top_folder_is_stored_under_uploads(ws):
    data = make_zip({**loco_files("screws/"), "__MACOSX/screws/._000.png": b"junk", "screws/.DS_Store": b"x",
                     "screws/train/Thumbs.db": b"x"})
    staged = stage_upload(ws, [UploadedFile("line3.zip", data)])
    assert staged.name == "screws" and ws.categories() == []  # the single top folder names it; not registered yet
    summary = staged.summary()
    assert summary.startswith("screws: MVTec LOCO AD folders in line3.zip")
    assert "4 good, 1 defective, 0 skipped" in summary and f"stored in {ws.path / 'uploads' / 'screws'}" in summary
    assert str(staged.staging) not in summary
    record = commit_upload(ws, staged)
    assert (record.name, record.layout, Path(record.data_root)) == ("screws", "loco", ws.path / "uploads" / "screws")
    assert len(load_category(ws.path / "uploads" / "screws").samples) == 5
    assert not list(ws.path.glob(STAGING_PREFIX + "*")) and not (ws.path / "uploads" / "screws" / "__MACOSX").exists()


def test_a_good_bad_zip_reports_the_truncated_jpeg_as_unreadable(ws):
    staged, record = upload_zip(ws, good_bad_files())
    assert record.name == "upload" and record.layout == "folder"  # no top folder: the zip's name
    [bad] = staged.plan.bad_files
    assert bad.path.name == "broken.jpg" and "truncated" in bad.reason
    assert (staged.plan.n_good, staged.plan.n_defective) == (4, 1)
    assert "skipped upload.zip/good/broken.jpg: truncated" in staged.summary()
    assert len(load_category(Path(record.data_root)).bad_files) == 1


def test_masks_and_yolo_zips_are_converted_into_workspace_data(ws):
    mask = np.zeros((12, 16), np.uint8)
    mask[2:6, 3:9] = 1
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    masks = {f"plates/images/p{i}.png": png(i) for i in range(3)} | {"plates/masks/p0.png": buffer.getvalue()}
    staged, record = upload_zip(ws, masks, name="m.zip")
    assert (record.name, Path(record.data_root)) == ("plates", ws.path / "data" / "plates")
    assert (staged.plan.n_good, staged.plan.n_defective) == (2, 1)
    assert f"stored in {ws.path / 'data' / 'plates'}" in staged.summary()

    yolo = {f"images/{i}.png": png(i, gray=True) for i in range(3)}
    yolo["labels/0.txt"] = b"0 0.1 0.1 0.9 0.1 0.9 0.9\n"
    staged, record = upload_zip(ws, yolo, name="kolektor.zip")
    assert (record.name, Path(record.data_root)) == ("kolektor", ws.path / "data" / "kolektor")
    assert staged.plan.layout == "yolo" and staged.plan.n_defective == 1
    assert not list(ws.path.glob(STAGING_PREFIX + "*")) and not (ws.path / "uploads").exists()


def test_loose_images_become_one_category_of_good_images(ws):
    files = {"C:\\photos\\a.png": png(1), "b.PNG": png(2), "c.jpg": truncated_jpeg()}
    staged, record = upload(ws, files, name="line_photos")
    assert staged.label == "3 image files" and record.layout == "folder"
    assert (staged.plan.n_good, staged.plan.n_defective, len(staged.plan.bad_files)) == (2, 0, 1)
    stored = ws.path / "uploads" / "line_photos" / "good"
    assert sorted(p.name for p in stored.iterdir()) == ["a.png", "b.PNG", "c.jpg"]


def _link_zip() -> bytes:
    return make_zip({"good/a.png": png(1), "good/b.png": png(2)}, links=("good/c.png",))


def _encrypted_zip() -> bytes:
    data = bytearray(make_zip({"good/a.png": png(1), "good/b.png": png(2)}))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" flag bit
        at = data.find(signature)
        while at >= 0:
            data[at + offset] |= 1
            at = data.find(signature, at + 1)
    return bytes(data)


def _damaged_zip() -> bytes:
    data = bytearray(make_zip({"good/a.png": bytes(range(256)) * 40, "good/b.png": png(2)}))
    data[60:70] = b"\xff" * 10  # inside a.png's compressed bytes
    return bytes(data)


REFUSALS = {
    "text renamed .zip": ({"notes.zip": b"just some text\n" * 20}, None, "is not a zip archive"),
    "random bytes": ({"x.zip": RNG.integers(0, 255, 3000, dtype=np.uint8).tobytes()}, None, "is not a zip archive"),
    "cut-off zip": ({"x.zip": make_zip(good_bad_files())[:-100]}, None, "is not a zip archive"),
    "zip of text files": ({"t.zip": make_zip({"a.txt": b"a", "b/c.csv": b"1,2"})}, None, "holds no images (2 file(s)"),
    "empty zip": ({"t.zip": make_zip({})}, None, "holds no images (no files"),
    "text file": ({"a.png": png(1), "notes.txt": b"hi"}, "x", "not an image or zip file: notes.txt"),
    "zip beside images": ({"a.zip": make_zip(good_bad_files()), "b.png": png(1)}, None, "upload one zip on its own"),
    "nothing": ({}, None, "choose a zip or image files"),
    "loose files without a name": ({"a.png": png(1), "b.png": png(2)}, None, "enter a category name"),
    "absolute path": ({"a.zip": make_zip({"/etc/good/a.png": png(1)})}, None, "absolute path"),
    "windows drive": ({"a.zip": make_zip({"C:/good/a.png": png(1)})}, None, "absolute path"),
    "zip slip": ({"a.zip": make_zip({"good/../../../evil.png": png(1)})}, None, "points outside the folder"),
    "symlink": ({"a.zip": _link_zip()}, None, "symbolic link"),
    "password": ({"a.zip": _encrypted_zip()}, None, "password-protected"),
    "damaged member": ({"a.zip": _damaged_zip()}, None, "a.zip is damaged (good/a.png: "),
    "duplicate names": ({"a.png": png(1), "sub/a.png": png(2)}, "x", "two files are named 'a.png'"),
    "no layout": ({"a.zip": make_zip({"x/a.png": png(1), "y/b.png": png(2)})}, None, "is not in a layout the importer"),
    "one image": ({"a.zip": make_zip({"good/a.png": png(1)})}, None, "only one readable image in a.zip/good"),
    "two categories": ({"a.zip": make_zip(loco_files("s/") | loco_files("t/"))}, None, "holds 2 categories (s, t)"),
    "bad name": ({"a.zip": make_zip(good_bad_files())}, "a/b", "cannot contain '/'"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_bad_upload_is_one_clear_refusal_and_leaves_nothing(ws, case):
    files, name, expected = REFUSALS[case]
    before = snapshot(ws)
    with pytest.raises(UploadError, match=None) as caught:
        upload(ws, files, name)
    assert expected in str(caught.value) and "\n" not in str(caught.value)
    assert snapshot(ws) == before


def test_size_limits_refuse_big_uploads_and_zip_bombs(ws):
    before = snapshot(ws)
    with pytest.raises(UploadError, match="is 1 MB; uploads are limited to 1 MB") as caught:
        upload(ws, {"big.zip": b"0" * (1024 * 1024 + 1)}, max_upload_bytes=1024 * 1024)
    bomb = make_zip({"good/a.png": png(1), "good/zeros.png": bytes(5_000_000)})
    assert len(bomb) < 50_000
    with pytest.raises(UploadError, match="would unpack to 5 MB; at most 4 MB"):
        upload(ws, {"bomb.zip": bomb}, max_unpacked_bytes=4 * 1024 * 1024)
    with pytest.raises(UploadError, match="holds 6 files; at most 5"):
        upload(ws, {"many.zip": make_zip(loco_files())}, max_files=5)
    assert snapshot(ws) == before and caught.value


def test_an_existing_category_name_is_refused_before_and_at_import(ws):
    upload_zip(ws, good_bad_files(), name="parts.zip")
    before = snapshot(ws)
    with pytest.raises(UploadError, match="category 'parts' already exists"):
        upload_zip(ws, good_bad_files(), name="parts.zip")
    assert snapshot(ws) == before
    # Two browsers checked the same name; the second Import is refused and its staging removed.
    first = stage_upload(ws, [UploadedFile("a.zip", make_zip(good_bad_files()))], "same")
    second = stage_upload(ws, [UploadedFile("b.zip", make_zip(good_bad_files()))], "same")
    commit_upload(ws, first)
    with pytest.raises(UploadError, match="'same' already exists"):
        commit_upload(ws, second)
    assert not list(ws.path.glob(STAGING_PREFIX + "*"))
    assert [c.name for c in ws.categories()] == ["parts", "same"]


def test_discard_and_stale_sweep_remove_staged_uploads(ws):
    staged = stage_upload(ws, [UploadedFile("a.zip", make_zip(good_bad_files()))])
    assert staged.staging.is_dir() and staged.staging.parent == ws.path
    discard_upload(staged)
    assert not staged.staging.exists()
    kept = stage_upload(ws, [UploadedFile("a.zip", make_zip(good_bad_files()))])
    assert sweep_stale(ws) == [] and kept.staging.is_dir()
    assert sweep_stale(ws, now=kept.staging.stat().st_mtime + 2 * 24 * 3600) == [kept.staging]
    with pytest.raises(UploadError, match="is gone"):
        commit_upload(ws, kept)
    assert ws.categories() == []


def test_streamlit_upload_limit_matches_the_library_default():
    config = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"
    assert "maxUploadSize = 500" in config.read_text()
    assert UploadLimits().max_upload_bytes == 500 * 1024 * 1024
