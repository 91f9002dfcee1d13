"""Build the real benchmark sets (KolektorSDD, MPDD metal_plate) as MVTec LOCO category folders.

The same importer as ``python -m pipeline import`` (plan, then an atomic write): KolektorSDD's
YOLO segmentation labels are rasterised, MPDD's masks binarised; good images are split into
train / validation / test-good by a hash of their name, every defect goes to test.

    .venv/bin/python scripts/build_real_sets.py --ksdd /work/data/raw/ksdd --mpdd /work/data/raw/mpdd --out /work/data/real

writes ``<out>/ksdd`` and ``<out>/mpdd_metal_plate`` (replacing older copies); then e.g.
``python -m pipeline fit --data <out> --category ksdd --workspace ws``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pipeline.data.import_write import write_loco_category  # noqa: E402
from pipeline.data.importer import plan_converted  # noqa: E402
from pipeline.data.loco import load_loco_category  # noqa: E402
from pipeline.errors import UserError  # noqa: E402

SETS = {
    "ksdd": ("Datasets", "yolo"),
    "mpdd_metal_plate": ("data_supervised/metal_plate", "masks"),
}
"""Category name -> (sub-folder of the given download folder, importer layout)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ksdd", type=Path, help="the extracted KolektorSDD folder (holding Datasets/)")
    parser.add_argument("--mpdd", type=Path, help="the MPDD folder holding data_supervised/metal_plate")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the LOCO categories into")
    args = parser.parse_args(argv)
    if args.ksdd is None and args.mpdd is None:
        parser.error("give --ksdd and/or --mpdd")
    return args


def build(name: str, download: Path, out: Path) -> None:
    """Plan, print the plan, write ``out/name``, and print the counts the LOCO loader reads back."""
    folder, layout = SETS[name]
    plan = plan_converted(download / folder, layout, name)
    print(plan.summary())
    target = write_loco_category(plan, out / name)
    counts = load_loco_category(target).counts()
    print(f"wrote {target}: " + ", ".join(f"{s}/{k} {n}" for s, ks in counts.items() for k, n in ks.items()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        for name, download in (("ksdd", args.ksdd), ("mpdd_metal_plate", args.mpdd)):
            if download is not None:
                build(name, download, args.out)
    except UserError as err:  # a wrong folder: one line, as the CLI prints it
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
