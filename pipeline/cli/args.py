"""The arguments several commands share, each written once: same flag, default and help everywhere.

A command passes its own help where it says something of its own (``--workspace``: "an existing
workspace" vs "created by fit if missing"); ``required=False`` makes an argument optional (``predict
--bundle`` needs no workspace). Nothing here imports torch: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import SettingsError
from pipeline.methods import method_names

DEVICE_HELP = "auto (CUDA when present), cpu or cuda"
DATA_HELP = "folder holding the category folder (LOCO layout or good/ + bad/)"
CATEGORY_HELP = "category name (its folder name under --data)"
EXISTING_WORKSPACE = "an existing workspace"
PSEUDO_LABELLED = "a category with pseudo-labels (pseudo-labels command or Masks page)"
METHOD_HELP = f"detection method: {', '.join(method_names())} (default: instant)"
BACKBONE_HELP = "auto, efficientnet_lite0 or wide_resnet50_2 (see fit --help)"
FIT_BACKBONE_HELP = ("auto (WRN50-2 for --profile paper when its weights are present, else the embedded "
                     "EfficientNet-Lite0), efficientnet_lite0 or wide_resnet50_2")
PROFILES = ("quick", "paper")
NOT_WITH_BUNDLE = " (not with --bundle)"


class Subcommands(Protocol):
    """What ``ArgumentParser.add_subparsers()`` returns, as far as the command groups use it."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def add_workspace(p: argparse.ArgumentParser, help: str | None = None, required: bool = True) -> None:
    """``--workspace FOLDER``."""
    p.add_argument("--workspace", type=Path, required=required, help=help)


def add_category(p: argparse.ArgumentParser, help: str | None = None, required: bool = True) -> None:
    """``--category NAME``."""
    p.add_argument("--category", required=required, help=help)


def add_data(p: argparse.ArgumentParser, help: str | None = DATA_HELP, required: bool = True) -> None:
    """``--data FOLDER``: where a category's images are."""
    p.add_argument("--data", type=Path, required=required, help=help)


def add_device(p: argparse.ArgumentParser, help: str | None = DEVICE_HELP) -> None:
    """``--device auto|cpu|cuda``."""
    p.add_argument("--device", default="auto", help=help)


def add_method(p: argparse.ArgumentParser, default: str = "instant", help: str | None = METHOD_HELP) -> None:
    """``--method NAME`` of a registered detection method."""
    p.add_argument("--method", default=default, help=help)


def add_seed(p: argparse.ArgumentParser) -> None:
    """``--seed N`` (default 0)."""
    p.add_argument("--seed", type=int, default=0)


def add_profile(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--profile quick|paper`` (default quick)."""
    p.add_argument("--profile", choices=PROFILES, default="quick", help=help)


def add_backbone(p: argparse.ArgumentParser, help: str = BACKBONE_HELP) -> None:
    """``--backbone auto|efficientnet_lite0|wide_resnet50_2``."""
    p.add_argument("--backbone", default="auto", help=help)


def add_assignments(p: argparse.ArgumentParser, help: str) -> None:
    """``--set PART.FIELD=VALUE`` (repeatable) into ``args.assignments``."""
    p.add_argument("--set", action="append", default=[], metavar="PART.FIELD=VALUE", dest="assignments", help=help)


def add_training_settings(p: argparse.ArgumentParser) -> None:
    """``--set`` of the training settings a fit stores with the model."""
    add_assignments(p, "change one training setting from the profile's default (repeatable); parts: segmentation "
                       "(the segmentation network) and lgst (the students), e.g. lgst.steps=3000 or "
                       "segmentation.epochs=30; stored with the model")


def add_method_target(p: argparse.ArgumentParser, with_data: bool = True, bundle: bool = False) -> None:
    """``--data`` (``with_data``), ``--category``, ``--workspace``, ``--method``, ``--device`` of the
    commands that work on one fitted method; with ``bundle`` the workspace and category are optional
    (``--bundle FILE`` replaces them)."""
    note = NOT_WITH_BUNDLE if bundle else ""
    if with_data:
        add_data(p)
    add_category(p, CATEGORY_HELP + note, required=not bundle)
    add_workspace(p, "workspace folder (created by fit if missing)" + note, required=not bundle)
    add_method(p)
    add_device(p)


def add_confidence_weighting(p: argparse.ArgumentParser) -> None:
    """``--confidence-weighting`` / ``--no-confidence-weighting`` (default: the saved setting)."""
    p.add_argument("--confidence-weighting", action=argparse.BooleanOptionalAction, default=None,
                   help="weight each pseudo-labelled image's supervised segmentation loss by its confidence "
                   "(IQR fence on its class areas) instead of the hard reliable/unreliable split; saved as the "
                   "category's setting (Clusters page, later fits and jobs use it); default: the saved setting, off")


def add_resume(p: argparse.ArgumentParser, inputs: str) -> None:
    """``--resume`` (the default) / ``--restart`` for a training command whose checkpoint depends on ``inputs``."""
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="restart", action="store_false",
                        help=f"continue an interrupted run from its last checkpoint when its settings and {inputs} "
                        "match (the default)")
    resume.add_argument("--restart", dest="restart", action="store_true",
                        help="ignore the checkpoint of an interrupted run and train from scratch")
    p.set_defaults(restart=False)  # both flags share ``restart``; without this --resume's default (True) wins


def require_positive(flag: str, value: int | None) -> None:
    """Refuse a count below 1 that a run cannot honour (None: not given, the default applies)."""
    if value is not None and value < 1:
        raise SettingsError(f"{flag} must be at least 1, got {value}")
