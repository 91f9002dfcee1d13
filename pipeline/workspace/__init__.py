"""Workspace store: one folder per project with a SQLite database and atomically written files."""

from pipeline.workspace.errors import WorkspaceError
from pipeline.workspace.files import (
    atomic_save_npy, atomic_save_png, atomic_save_safetensors, atomic_write_bytes, atomic_write_json,
    atomic_write_text, load_safetensors,
)
from pipeline.workspace.jobs import FINAL_STATUSES, JOB_STATUSES, JobRecord, pid_alive
from pipeline.workspace.records import IMAGE_LABELS, LAYOUTS, TAG_STATUSES, CategoryRecord, ModelRecord, ScoreRow
from pipeline.workspace.schema import SCHEMA_VERSION
from pipeline.workspace.store import DB_NAME, Workspace

__all__ = [
    "DB_NAME",
    "FINAL_STATUSES",
    "IMAGE_LABELS",
    "JOB_STATUSES",
    "LAYOUTS",
    "SCHEMA_VERSION",
    "TAG_STATUSES",
    "CategoryRecord",
    "JobRecord",
    "ModelRecord",
    "ScoreRow",
    "Workspace",
    "WorkspaceError",
    "atomic_save_npy",
    "atomic_save_png",
    "atomic_save_safetensors",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "load_safetensors",
    "pid_alive",
]
