"""Atomic writers: round trips, and failed writes that leave the old file and no temp files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.workspace import files
from pipeline.workspace.files import (
    atomic_save_npy, atomic_save_png, atomic_save_safetensors, atomic_write_bytes, atomic_write_json,
    atomic_write_text, load_safetensors,
)


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_bytes_and_text_round_trip_and_create_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "blob.bin"
    atomic_write_bytes(target, b"\x00\x01binary\xff")
    assert target.read_bytes() == b"\x00\x01binary\xff"
    atomic_write_text(target.with_suffix(".txt"), "grüße\nline 2")
    assert target.with_suffix(".txt").read_text(encoding="utf-8") == "grüße\nline 2"
    assert _only(target.parent) == ["blob.bin", "blob.txt"]


def test_json_is_indented_sorted_and_handles_numpy(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    atomic_write_json(target, {"b": np.float32(0.5), "a": [1, 2], "c": np.arange(3), "p": Path("x/y")})
    text = target.read_text()
    assert json.loads(text) == {"a": [1, 2], "b": 0.5, "c": [0, 1, 2], "p": "x/y"}
    assert text.index('"a"') < text.index('"b"') and '\n  "a": [' in text


def test_npy_round_trip(tmp_path: Path) -> None:
    array = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
    atomic_save_npy(tmp_path / "f.npy", array)
    loaded = np.load(tmp_path / "f.npy", allow_pickle=False)
    assert loaded.dtype == np.float32 and np.array_equal(loaded, array)


@pytest.mark.parametrize("shape", [(7, 9), (7, 9, 3)])
def test_png_round_trip(tmp_path: Path, shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    atomic_save_png(tmp_path / "m.png", array)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m.png")), array)


def test_png_bool_mask_is_0_255_and_bad_dtype_refused(tmp_path: Path) -> None:
    mask = np.zeros((4, 4), dtype=bool)
    mask[1:3, 1:3] = True
    atomic_save_png(tmp_path / "mask.png", mask)
    assert set(np.unique(np.asarray(Image.open(tmp_path / "mask.png")))) == {0, 255}
    with pytest.raises(ValueError, match="uint8"):
        atomic_save_png(tmp_path / "bad.png", np.zeros((4, 4), dtype=np.float32))
    assert _only(tmp_path) == ["mask.png"]


def test_safetensors_round_trip_with_metadata(tmp_path: Path) -> None:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    tensors = {
        "w": base, "w_t": base.t(), "tied": base, "row": base[1], "idx": torch.tensor([1, 2, 3]),
        "half": torch.ones(2, dtype=torch.bfloat16),
    }
    meta = {"method": "instant", "version": "1"}
    atomic_save_safetensors(tmp_path / "ck" / "model.safetensors", tensors, meta)
    loaded, loaded_meta = load_safetensors(tmp_path / "ck" / "model.safetensors")
    assert loaded_meta == meta
    assert sorted(loaded) == sorted(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor)


def test_safetensors_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_safetensors(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.safetensors"):
        load_safetensors(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="str to str"):
        atomic_save_safetensors(tmp_path / "x.safetensors", {"a": torch.zeros(1)}, {"n": 1})  # type: ignore[dict-item]


def test_unserialisable_json_keeps_previous_content(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    atomic_write_json(target, {"ok": 1})
    before = target.read_bytes()
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert target.read_bytes() == before
    assert _only(tmp_path) == ["settings.json"]


def test_failing_replace_keeps_previous_content_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "data.npy"
    atomic_save_npy(target, np.ones(3))

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    writers = [
        lambda: atomic_write_bytes(target, b"new"),
        lambda: atomic_save_npy(target, np.zeros(3)),
        lambda: atomic_save_png(target, np.zeros((2, 2), np.uint8)),
        lambda: atomic_save_safetensors(target, {"a": torch.zeros(2)}),
    ]
    for write in writers:
        with pytest.raises(OSError, match="disk gone"):
            write()
    assert np.array_equal(np.load(target), np.ones(3))
    assert _only(tmp_path) == ["data.npy"]


def test_failure_while_writing_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.npy"
    with pytest.raises(ValueError):
        atomic_save_npy(target, np.array([object()], dtype=object))  # pickling is refused
    assert _only(tmp_path) == []


def test_written_files_are_not_private(tmp_path: Path) -> None:
    # mkstemp creates 0600 files; written files should get the usual umask mode instead.
    atomic_write_text(tmp_path / "r.txt", "x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "r.txt").stat().st_mode & 0o777 == 0o666 & ~mask
