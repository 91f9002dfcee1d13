"""The command-line package: every command has a handler, the shared arguments read the same in
every command, unknown commands and missing arguments exit 2, and ``--help`` stays without torch."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import args as shared
from pipeline.cli.main import build_parser, main, parse_args
from pipeline.errors import SettingsError

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = {
    "fit": ["--data", "d", "--category", "c", "--workspace", "w"],
    "evaluate": ["--data", "d", "--category", "c", "--workspace", "w", "--out", "o.json"],
    "predict": ["x.png", "--out", "o"],
    "synth": ["--out", "o"],
    "demo": [],
    "import": ["--workspace", "w", "--data", "d"],
    "pseudo-labels": ["--data", "d", "--category", "c", "--workspace", "w"],
    "tags": ["--workspace", "w", "--category", "c"],
    "train-seg": ["--workspace", "w", "--category", "c"],
    "train-lgst": ["--workspace", "w", "--category", "c"],
    "jobs": ["list", "--workspace", "w"],
    "report": ["--workspace", "w", "--category", "c", "--out", "r.html"],
    "bench": [],
    "export": ["--workspace", "w", "--category", "c", "--out", "m.onnx"],
    "label": ["--workspace", "w", "--category", "c"],
    "calibrate": ["--workspace", "w", "--category", "c"],
    "doctor": [],
}


def test_every_command_is_listed_and_has_a_handler() -> None:
    assert "{" + ",".join(MINIMAL) + "}" in " ".join(build_parser().format_usage().split())
    for command, rest in MINIMAL.items():
        args = parse_args([command, *rest])
        assert args.command == command and callable(args.handler), command


@pytest.mark.parametrize("argv", [["jobs", "start", "--workspace", "w", "--category", "c"],
                                  ["jobs", "show", "--workspace", "w", "--job", "1"],
                                  ["jobs", "cancel", "--workspace", "w", "--job", "1"],
                                  ["jobs", "resume", "--workspace", "w", "--job", "1"]])
def test_each_jobs_subcommand_has_its_own_handler(argv) -> None:
    handlers = {parse_args(a).handler for a in (argv, ["jobs", "list", "--workspace", "w"])}
    assert len(handlers) == 2


def test_the_hidden_worker_parses_apart() -> None:
    args = parse_args(["job-worker", "--workspace", "w", "--job", "3"])
    assert args.command == "job-worker" and args.job == 3 and args.workspace == Path("w") and callable(args.handler)
    assert "job-worker" not in build_parser().format_help()


@pytest.mark.parametrize("command", ["fit", "evaluate", "predict", "tags", "train-seg", "train-lgst", "report",
                                     "export", "label", "calibrate", "import", "pseudo-labels"])
def test_a_commands_help_lists_the_shared_workspace_argument(command, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "--workspace WORKSPACE" in capsys.readouterr().out


def test_the_shared_device_argument_reads_the_same_where_it_has_help(capsys) -> None:
    for command in ("fit", "pseudo-labels", "train-seg", "bench"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert shared.DEVICE_HELP in " ".join(capsys.readouterr().out.split()), command


def test_an_unknown_command_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["nope"])
    assert done.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_a_missing_required_argument_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["fit", "--data", "d"])
    assert done.value.code == 2
    assert "--category" in capsys.readouterr().err


def test_predict_needs_a_workspace_only_without_a_bundle(capsys) -> None:
    args = parse_args(["predict", "x.png", "--out", "o", "--bundle", "m.bundle"])
    assert args.workspace is None and args.category is None and args.bundle == Path("m.bundle")
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert " ".join(capsys.readouterr().out.split()).count("(not with --bundle)") == 2


def test_resume_is_the_default_and_restart_opts_out() -> None:
    assert parse_args(["train-seg", "--workspace", "w", "--category", "c"]).restart is False
    assert parse_args(["train-seg", "--workspace", "w", "--category", "c", "--restart"]).restart is True
    assert parse_args(["train-lgst", "--workspace", "w", "--category", "c", "--resume"]).restart is False


def test_set_assignments_collect_in_order() -> None:
    args = parse_args(["fit", *MINIMAL["fit"], "--set", "lgst.steps=3", "--set", "segmentation.epochs=2"])
    assert args.assignments == ["lgst.steps=3", "segmentation.epochs=2"]


def test_require_positive_refuses_counts_below_one() -> None:
    shared.require_positive("--epochs", None)
    shared.require_positive("--epochs", 1)
    with pytest.raises(SettingsError, match="--epochs must be at least 1, got 0"):
        shared.require_positive("--epochs", 0)


def test_method_target_without_data_or_bundle() -> None:
    parser = argparse.ArgumentParser()
    shared.add_method_target(parser, with_data=False)
    args = parser.parse_args(["--category", "c", "--workspace", "w"])
    assert (args.method, args.device, args.category, args.workspace) == ("instant", "auto", "c", Path("w"))
    assert not hasattr(args, "data")


def test_python_m_pipeline_help_starts_without_torch() -> None:
    code = ("import runpy, sys\nsys.argv = ['pipeline', '--help']\n"
            "try:\n    runpy.run_module('pipeline', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
            "print(code, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "usage: python -m pipeline" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "0 False"
