"""Command line: ``python -m pipeline <command> ...``. Parses arguments, calls one function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.bug_reports import report_bug
from pipeline.errors import SettingsError, UserError, report_user_error

EXPECTED_ERRORS = (UserError, PermissionError)
"""Errors the user can fix: one ``error:`` line, exit 2. Every project error (``DataError``,
``WorkspaceError``, ``MissingWeightsError``, ``DeviceError``, ...) is a ``UserError``; a
``PermissionError`` is the machine's (an ``--out`` folder not writable). Anything else is a bug."""


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
    _confidence_arg(p)
    _training_settings_arg(p)

    p = sub.add_parser("evaluate", help="score the test split and write metrics JSON")
    _method_args(p)
    p.add_argument("--out", type=Path, required=True, help="metrics JSON file to write")

    p = sub.add_parser("predict", help="score images with a fitted method; write heat maps and scores.jsonl")
    _method_args(p, with_data=False)
    p.add_argument("images", nargs="+", type=Path, help="image files")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    _bundle_predict_args(p)

    p = sub.add_parser("synth", help="generate the synthetic LOCO-layout benchmark")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--categories", nargs="+", help="categories to write (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=None, help="good training images per category (validation gets a third)")
    p.add_argument("--n-test", type=int, default=None, help="test images per kind (good, logical, structural)")
    p.add_argument("--size", type=int, default=256, help="image side in px")

    p = sub.add_parser("demo", help="generate the demo data on first use and register it in the demo workspace")
    p.add_argument("--root", type=Path, default=Path("demo"))

    p = sub.add_parser("import", help="register data categories in a workspace; prints what was found first")
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--categories", nargs="+", help="category names (default: every category found)")
    p.add_argument("--category", help="name of an image+mask or YOLO set (default: its folder name), "
                   "or one category of a LOCO / plain folder")
    p.add_argument("--layout", choices=("auto", "loco", "folder", "masks", "yolo"), default="auto",
                   help="auto (detect), loco, folder (good/ + bad/), masks (images/ + masks/) or yolo "
                   "(images/ + labels/); masks and yolo sets are copied into <workspace>/data in LOCO layout")

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
    p.add_argument("--set", action="append", default=[], metavar="PART.FIELD=VALUE", dest="assignments",
                   help="change one stage setting for this run and store it for the next (repeatable), e.g. "
                        "classic.refine_iterations=2 or clusters.bandwidth_quantile=0.4")
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
    _resume_args(p, "pseudo-labels")
    _confidence_arg(p)

    _train_lgst_parser(sub)
    _jobs_parser(sub)
    _report_parser(sub)
    _deploy_parsers(sub)
    _calibration_parsers(sub)
    sub.add_parser("doctor", help="list models (found or missing, where to put them), device and package versions")
    return parser


def _training_settings_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="PART.FIELD=VALUE", dest="assignments",
                   help="change one training setting from the profile's default (repeatable); parts: segmentation "
                        "(the segmentation network) and lgst (the students), e.g. lgst.steps=3000 or "
                        "segmentation.epochs=30; stored with the model")


def _confidence_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--confidence-weighting", action=argparse.BooleanOptionalAction, default=None,
                   help="weight each pseudo-labelled image's supervised segmentation loss by its confidence "
                   "(IQR fence on its class areas) instead of the hard reliable/unreliable split; saved as the "
                   "category's setting (Clusters page, later fits and jobs use it); default: the saved setting, off")


def _resume_args(p: argparse.ArgumentParser, inputs: str) -> None:
    """``--resume`` (the default) / ``--restart`` for a training command whose checkpoint depends on ``inputs``."""
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="restart", action="store_false",
                        help=f"continue an interrupted run from its last checkpoint when its settings and {inputs} "
                        "match (the default)")
    resume.add_argument("--restart", dest="restart", action="store_true",
                        help="ignore the checkpoint of an interrupted run and train from scratch")
    p.set_defaults(restart=False)  # both flags share ``restart``; without this --resume's default (True) wins


def _calibration_parsers(sub) -> None:
    p = sub.add_parser("label", help="mark images good or bad (few-shot calibration, instant anomaly keys); "
                                     "without images, list the labelled ones")
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--category", required=True)
    p.add_argument("--as", dest="label", choices=("good", "bad", "logical", "structural", "none"),
                   help="label to give (none removes it)")
    p.add_argument("images", nargs="*", help="image keys (test/logical/000.png) or paths")

    p = sub.add_parser("calibrate", help="fit the fusion weights and a threshold on the images marked bad "
                                         "(needs --min-marked of them; else equal weights stay)")
    _method_args(p, with_data=False)
    p.add_argument("--min-marked", type=int, default=3, help="fewest marked bad images to calibrate on (default 3)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--apply", action="store_true", help="score with the calibrated weights and threshold from now on")
    action.add_argument("--revert", action="store_true", help="back to equal weights and the 'N flagged' threshold")


def _train_lgst_parser(sub) -> None:
    p = sub.add_parser("train-lgst", help="train a category's LGST students (local + global) into the method folder fit reuses")
    p.add_argument("--workspace", type=Path, required=True, help="an existing workspace")
    p.add_argument("--category", required=True, help="a category with pseudo-labels (pseudo-labels command or Masks page)")
    p.add_argument("--method", choices=("aecsad", "csad"), default="aecsad",
                   help="aecsad: global student with self-attention; csad: the plain CNN one (default: aecsad)")
    p.add_argument("--profile", choices=("quick", "paper"), default="quick",
                   help="quick: CPU-friendly (narrow students, up to 2300 steps in 22 min of training); "
                        "paper: thesis settings (70000 steps)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="override the profile's number of steps (fit --set lgst.steps=N reuses them; a plain fit trains its own)")
    p.add_argument("--backbone", default="auto", help="auto, efficientnet_lite0 or wide_resnet50_2 (see fit --help)")
    _resume_args(p, "data")


def _bundle_predict_args(p: argparse.ArgumentParser) -> None:
    """``predict --bundle FILE``: score with a model bundle instead of a workspace."""
    p.add_argument("--bundle", type=Path, help="a model bundle (export --format bundle); then --workspace and "
                   "--category are not needed")
    for action in p._actions:
        if action.dest in ("workspace", "category"):
            action.required = False
            action.help = (action.help or "") + " (not with --bundle)"


def _deploy_parsers(sub) -> None:
    from pipeline.deploy_commands import EXPORT_HELP

    p = sub.add_parser("bench", help="time every stage (batch 1 latency, batch 8 throughput, memory, training "
                       "step) of aecsad, csad and instant beside EfficientAD-S/M and PatchCore; no workspace needed")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--methods", nargs="+", help="any of aecsad csad instant efficientad_s efficientad_m patchcore "
                   "(default: all; the ratios need aecsad, efficientad_m and patchcore)")
    p.add_argument("--profile", choices=("quick", "paper"), default="quick",
                   help="network widths to time: quick (the CPU profile's narrow students) or paper (thesis widths)")
    p.add_argument("--out", type=Path, help="JSON file to write")
    p.add_argument("--repeats", type=int, help="timed runs per figure (default: as many as --budget-s allows, 1 to 7)")
    p.add_argument("--budget-s", type=float, default=3.0, help="seconds of timed runs per figure (default: 3)")
    p.add_argument("--skip-training", action="store_true", help="leave out the training-step timings")
    p.add_argument("--train-images", type=int, default=200, help="training images the memory banks are sized for")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")

    p = sub.add_parser("export", help="export a fitted model: ONNX graph with maps, or a one-file bundle",
                       description=EXPORT_HELP)
    p.add_argument("--workspace", type=Path, required=True, help="an existing workspace")
    p.add_argument("--category", required=True, help="a category fitted in it")
    p.add_argument("--method", default="aecsad", help="fitted method (default: aecsad; onnx: aecsad or csad)")
    p.add_argument("--format", choices=("onnx", "bundle"), default="onnx", help=EXPORT_HELP)
    p.add_argument("--out", type=Path, required=True, help="file to write (.onnx or .bundle)")
    p.add_argument("--check", nargs="+", type=Path, metavar="IMAGE",
                   help="onnx: also run these images through ONNX Runtime and PyTorch and print the differences")


def _report_parser(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report (AUROC, ROC curves, threshold, worst images)")
    p.add_argument("--workspace", type=Path, required=True, help="an existing workspace")
    p.add_argument("--category", required=True, help="a category fitted in it (evaluated first if it never was)")
    p.add_argument("--method", default="instant", help="detection method (default: instant)")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    p.add_argument("--worst", type=int, default=8, help="worst test images shown with their heat maps (default: 8)")
    p.add_argument("--reevaluate", action="store_true", help="score the test images again before writing the report")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda (only used to evaluate)")


def _jobs_parser(sub) -> None:
    p = sub.add_parser("jobs", help="fit in a background process: start, list, show, cancel, resume jobs")
    jobs = p.add_subparsers(dest="jobs_command", required=True)
    start = jobs.add_parser("start", help="start fitting a registered category in the background; prints the job id")
    start.add_argument("--workspace", type=Path, required=True, help="an existing workspace (or one --data creates)")
    start.add_argument("--category", required=True, help="a category registered in it (import command, or --data)")
    start.add_argument("--method", default="instant", help="detection method (default: instant)")
    start.add_argument("--data", type=Path, help="register the category from this folder first, like fit does")
    start.add_argument("--profile", choices=("quick", "paper"), default="quick")
    start.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    start.add_argument("--seed", type=int, default=0)
    start.add_argument("--backbone", default="auto", help="auto, efficientnet_lite0 or wide_resnet50_2 (see fit --help)")
    _training_settings_arg(start)
    p = jobs.add_parser("list", help="recent jobs, newest first")
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--limit", type=int, default=20)
    for name, text in (("show", "a job's stage, step, ETA, last losses and log tail"),
                       ("cancel", "cancel a running job (checkpoints are kept; resume continues from them)"),
                       ("resume", "start a failed or cancelled job again from its checkpoints; prints the new id")):
        p = jobs.add_parser(name, help=text)
        p.add_argument("--workspace", type=Path, required=True)
        p.add_argument("--job", type=int, required=True, help="job id (see jobs list)")
        if name == "show":
            p.add_argument("--log-lines", type=int, default=20, help="lines of the worker log to show")


def _worker_parser() -> argparse.ArgumentParser:
    # Hidden: started by ``pipeline.jobs.launch_fit_job``, not by people, so not in --help.
    parser = argparse.ArgumentParser(prog="python -m pipeline job-worker")
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--job", type=int, required=True)
    return parser


def run_jobs(args: argparse.Namespace) -> int:
    from pipeline import commands

    if args.jobs_command == "start":
        return commands.jobs_start_command(
            args.workspace, args.category, args.method, args.profile, args.device, args.seed, args.backbone, args.data,
            args.assignments,
        )
    if args.jobs_command == "list":
        return commands.jobs_list_command(args.workspace, args.limit)
    if args.jobs_command == "show":
        return commands.jobs_show_command(args.workspace, args.job, args.log_lines)
    if args.jobs_command == "cancel":
        return commands.jobs_cancel_command(args.workspace, args.job)
    return commands.jobs_resume_command(args.workspace, args.job)


def _run_deploy(args: argparse.Namespace) -> int:
    from pipeline import deploy_commands  # imported on use: loads torch models

    if args.command == "bench":
        return deploy_commands.bench_command(args.device, args.methods, args.out, args.profile, args.repeats,
                                             args.budget_s, args.skip_training, args.train_images, args.threads)
    if args.command == "export":
        return deploy_commands.export_command(args.workspace, args.category, args.method, args.format, args.out,
                                              check_images=args.check)
    return deploy_commands.predict_bundle_command(args.bundle, args.images, args.out, args.device)


def run(args: argparse.Namespace) -> int:
    if args.command == "job-worker":  # before importing every command: a worker should start fast
        from pipeline.jobs.worker import run_worker

        return run_worker(args.workspace, args.job)
    from pipeline import commands

    if args.command == "fit":
        return commands.fit_command(
            args.data, args.category, args.workspace, args.method, args.profile, args.device, args.seed, args.backbone,
            args.confidence_weighting, args.assignments,
        )
    if args.command == "evaluate":
        return commands.evaluate_command(args.data, args.category, args.workspace, args.method, args.out, args.device)
    if args.command in ("bench", "export") or (args.command == "predict" and args.bundle is not None):
        return _run_deploy(args)
    if args.command == "predict":
        if args.workspace is None or args.category is None:
            raise SettingsError("predict needs --workspace and --category, or --bundle FILE")
        return commands.predict_command(args.workspace, args.category, args.method, args.images, args.out, args.device)
    if args.command == "synth":
        return commands.synth_command(args.out, args.categories, args.seed, args.n_train, args.n_test, args.size)
    if args.command == "demo":
        return commands.demo_command(args.root)
    if args.command == "import":
        return commands.import_command(args.workspace, args.data, args.categories, args.category, args.layout)
    if args.command in ("pseudo-labels", "tags"):
        from pipeline import pseudolabel_commands  # imported on use: the stages load torch models

        if args.command == "tags":
            return pseudolabel_commands.tags_command(
                args.workspace, args.category, args.keep, args.drop, args.background, not args.no_imagenet, args.device
            )
        return pseudolabel_commands.pseudo_labels_command(
            args.data, args.category, args.workspace, args.detector, args.segmenter, args.device, args.seed, args.export,
            args.default_settings, args.assignments,
        )
    if args.command == "train-seg":
        from pipeline import segmentation_commands  # imported on use: loads torch models

        return segmentation_commands.train_seg_command(
            args.workspace, args.category, args.profile, args.device, args.seed, args.epochs, args.restart,
            args.confidence_weighting,
        )
    if args.command == "train-lgst":
        from pipeline import lgst_commands  # imported on use: loads torch models

        return lgst_commands.train_lgst_command(
            args.workspace, args.category, args.method, args.profile, args.device, args.seed, args.steps,
            args.backbone, args.restart,
        )
    if args.command in ("label", "calibrate"):
        from pipeline import calibration_commands

        if args.command == "label":
            return calibration_commands.label_command(args.workspace, args.category, args.label, args.images)
        return calibration_commands.calibrate_command(args.workspace, args.category, args.method, args.device,
                                                      args.min_marked, args.apply, args.revert)
    if args.command == "jobs":
        return run_jobs(args)
    if args.command == "report":
        from pipeline import report_commands

        return report_commands.report_command(
            args.workspace, args.category, args.method, args.out, args.device, args.worst, args.reevaluate
        )
    return commands.doctor_command()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line; ``job-worker`` has its own parser so it stays out of --help."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["job-worker"]:
        return _worker_parser().parse_args(argv[1:], argparse.Namespace(command="job-worker"))
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        return run(args)
    except EXPECTED_ERRORS as err:
        return report_user_error(err)  # one line, so scripts can grep it
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the one bug handler: anything else is the workbench's fault; keep its traceback
        return report_bug(err, argv, getattr(args, "workspace", None))


if __name__ == "__main__":
    sys.exit(main())
