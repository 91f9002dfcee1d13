"""The one error type of the workspace store (kept apart so schema.py and store.py can share it)."""

from __future__ import annotations

from pipeline.errors import UserError


class WorkspaceError(UserError, RuntimeError):
    """A workspace that cannot be used as asked; the one-line message says what and where."""


__all__ = ["WorkspaceError"]
