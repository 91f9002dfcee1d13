"""The declared layering holds, and the light commands start without torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LIGHT_START = """
import sys
from pipeline.__main__ import main
try:
    main(["synth", "--help"])
except SystemExit:
    pass
print("torch" in sys.modules)
"""


def test_synth_help_does_not_import_torch():
    done = subprocess.run([sys.executable, "-c", LIGHT_START], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_import_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "lint-imports missing: install requirements.txt"
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout and "KEPT" in done.stdout
