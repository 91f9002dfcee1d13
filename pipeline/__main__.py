"""Command line: ``python -m pipeline <command> ...``. Parses arguments, calls one function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import commands
from pipeline.data.images import ImageReadError
from pipeline.data.samples import DataError
from pipeline.device import DeviceError
from pipeline.models.weights import MissingWeightsError
from pipeline.workspace import WorkspaceError

EXPECTED_ERRORS = (DataError, WorkspaceError, MissingWeightsError, DeviceError, ImageReadError, FileNotFoundError, ValueError)


def _method_args(p: argparse.ArgumentParser, with_data: bool = True) -> None:
    if with_data:
        p.add_argument("--data", type=Path, required=True, help="folder holding the category folder (LOCO layout or good/ + bad/)")
    p.add_argument("--category", required=True, help="category name (its folder name under --data)")
    p.add_argument("--workspace", type=Path, required=True, help="workspace folder (created by fit if missing)")
    p.add_argument("--method", default="instant", help="detection method (default: instant)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="Inspection workbench: visual anomaly detection from good parts.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fit", help="fit a method on a category's good images")
    _method_args(p)
    p.add_argument("--profile", choices=("quick", "paper"), default="quick", help="quick: CPU-friendly; paper: thesis settings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--backbone", default="auto",
        help="auto (WRN50-2 for --profile paper when its weights are present, else the embedded "
        "EfficientNet-Lite0), efficientnet_lite0 or wide_resnet50_2",
    )

    p = sub.add_parser("evaluate", help="score the test split and write metrics JSON")
    _method_args(p)
    p.add_argument("--out", type=Path, required=True, help="metrics JSON file to write")

    p = sub.add_parser("predict", help="score images with a fitted method; write heat maps and scores.jsonl")
    _method_args(p, with_data=False)
    p.add_argument("images", nargs="+", type=Path, help="image files")
    p.add_argument("--out", type=Path, required=True, help="output folder")

    p = sub.add_parser("synth", help="generate the synthetic LOCO-layout benchmark")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--categories", nargs="+", help="categories to write (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=None, help="good training images per category (validation gets a third)")
    p.add_argument("--n-test", type=int, default=None, help="test images per kind (good, logical, structural)")
    p.add_argument("--size", type=int, default=256, help="image side in px")

    p = sub.add_parser("demo", help="generate the demo data on first use and register it in the demo workspace")
    p.add_argument("--root", type=Path, default=Path("demo"))

    p = sub.add_parser("import", help="register data categories in a workspace")
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--categories", nargs="+", help="category names (default: every category found)")

    p = sub.add_parser("pseudo-labels", help="pseudo-label a category's training images: masks, clusters, label maps")
    p.add_argument("--data", type=Path, required=True, help="folder holding the category folder (LOCO layout or good/ + bad/)")
    p.add_argument("--category", required=True, help="category name (its folder name under --data)")
    p.add_argument("--workspace", type=Path, required=True, help="workspace folder (created if missing)")
    p.add_argument("--detector", choices=("auto", "groundingdino", "manual", "none"), default="auto",
                   help="auto: GroundingDINO when its weights are found, else boxes drawn on the Masks page, else none")
    p.add_argument("--segmenter", choices=("auto", "sam", "classic"), default="auto",
                   help="auto: SAM when its weights are found, else classical region proposals")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--seed", type=int, default=None,
                   help="seeds the feature projection and the clustering (default: the stored settings' seed, else 0)")
    p.add_argument("--default-settings", action="store_true",
                   help="use the default stage settings, not those stored in the workspace by the Masks page")
    p.add_argument("--export", type=Path, help="also write each training image's label map (8-bit PNG) here")

    p = sub.add_parser("tags", help="list tag suggestions of a category and keep/drop/mark tags as background")
    p.add_argument("--workspace", type=Path, required=True, help="an existing workspace")
    p.add_argument("--category", required=True, help="a category registered in it (fit, import or pseudo-labels)")
    p.add_argument("--keep", nargs="+", default=[], metavar="TAG", help="tags naming parts")
    p.add_argument("--drop", nargs="+", default=[], metavar="TAG", help="tags to ignore")
    p.add_argument("--background", nargs="+", default=[], metavar="TAG", help="tags naming background")
    p.add_argument("--no-imagenet", action="store_true", help="skip the embedded classifier's ImageNet suggestions")
    p.add_argument("--device", default="auto")

    p = sub.add_parser("train-seg", help="train the component segmentation network on a category's pseudo-labels")
    p.add_argument("--workspace", type=Path, required=True, help="an existing workspace")
    p.add_argument("--category", required=True, help="a category with pseudo-labels (pseudo-labels command or Masks page)")
    p.add_argument("--profile", choices=("quick", "paper"), default="quick",
                   help="quick: CPU-friendly (15 epochs, smaller head); paper: thesis settings (120 epochs)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="override the profile's number of epochs")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="restart", action="store_false",
                        help="continue an interrupted run from its last checkpoint when its settings and "
                        "pseudo-labels match (the default)")
    resume.add_argument("--restart", dest="restart", action="store_true",
                        help="ignore the checkpoint of an interrupted run and train from scratch")
    p.set_defaults(restart=False)  # both flags share ``restart``; without this --resume's default (True) wins

    sub.add_parser("doctor", help="list models (found or missing, where to put them), device and package versions")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.command == "fit":
        return commands.fit_command(
            args.data, args.category, args.workspace, args.method, args.profile, args.device, args.seed, args.backbone
        )
    if args.command == "evaluate":
        return commands.evaluate_command(args.data, args.category, args.workspace, args.method, args.out, args.device)
    if args.command == "predict":
        return commands.predict_command(args.workspace, args.category, args.method, args.images, args.out, args.device)
    if args.command == "synth":
        return commands.synth_command(args.out, args.categories, args.seed, args.n_train, args.n_test, args.size)
    if args.command == "demo":
        return commands.demo_command(args.root)
    if args.command == "import":
        return commands.import_command(args.workspace, args.data, args.categories)
    if args.command in ("pseudo-labels", "tags"):
        from pipeline import pseudolabel_commands  # imported on use: the stages load torch models

        if args.command == "tags":
            return pseudolabel_commands.tags_command(
                args.workspace, args.category, args.keep, args.drop, args.background, not args.no_imagenet, args.device
            )
        return pseudolabel_commands.pseudo_labels_command(
            args.data, args.category, args.workspace, args.detector, args.segmenter, args.device, args.seed, args.export,
            args.default_settings,
        )
    if args.command == "train-seg":
        from pipeline import segmentation_commands  # imported on use: loads torch models

        return segmentation_commands.train_seg_command(
            args.workspace, args.category, args.profile, args.device, args.seed, args.epochs, args.restart
        )
    return commands.doctor_command()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except EXPECTED_ERRORS as err:
        # One line, so scripts can grep it; multi-line messages (missing weights) are joined.
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
