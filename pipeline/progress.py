"""How long loops report progress and live training metrics, and the terminal's progress bar.

Stdlib and tqdm only at import time: data generation, pseudo-labelling, methods, jobs and the CLI
all report through these without loading torch.
"""

from __future__ import annotations

import sys
from typing import Callable

from tqdm import tqdm

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called by long loops so the CLI and jobs can report."""


def no_progress(stage: str, done: int, total: int) -> None:
    """Progress sink that ignores everything."""


MetricsFn = Callable[[dict], None]
"""``report(record)``: live training metrics such as ``{"stage": "train lgst", "step": 120,
"loss": 0.31, "loss_local": 0.12, ...}`` (numbers only besides ``stage``); a background job keeps
them for the Train page's loss curves. Call it every few steps or once per epoch, not per pixel."""


def no_metrics(record: dict) -> None:
    """Metrics sink that ignores everything."""


class TqdmProgress:
    """``ProgressFn`` that draws one tqdm bar per stage on stderr."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage or self._bar is None:
            self.close()
            self._stage = stage
            # In a log file (no terminal) every redraw is a new line: redraw every few seconds only.
            interval = 0.1 if sys.stderr.isatty() else 5.0
            self._bar = tqdm(total=total, desc=stage, file=sys.stderr, leave=False, dynamic_ncols=True,
                             mininterval=interval)
        if self._bar.total != total:  # a time-budgeted stage re-plans its length
            self._bar.total = total
        self._bar.update(done - self._bar.n)  # update() honours mininterval; refresh() would not

    def write(self, text: str) -> None:
        """Print a line to stdout without tearing the bar (tqdm clears and redraws it)."""
        tqdm.write(text, file=sys.stdout)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
