"""``doctor``: which models are found or missing (and where they go), the device, package versions."""

from __future__ import annotations

import argparse

from pipeline.cli import args as shared


def register(sub: shared.Subcommands) -> None:
    """Add ``doctor`` to the command parsers ``sub``."""
    p = sub.add_parser("doctor", help="list models (found or missing, where to put them), device and package versions")
    p.set_defaults(handler=doctor)


def doctor(args: argparse.Namespace) -> int:
    """Print the report of ``pipeline.doctor``."""
    from pipeline.doctor import collect_report, format_report

    print(format_report(collect_report()))
    return 0
