"""The workspace: one folder per project, holding a SQLite database and the files the user made.

Layout::

    <workspace>/workspace.sqlite                    categories, labels, settings, models, scores, jobs
    <workspace>/categories/<category>/<method>/     masks, features, checkpoints, maps, reports

A ``Workspace`` object holds only its path; every call opens its own short-lived connection, so
one object may be used from many threads, and several processes may share the folder. Each write
is one transaction and every item is an upsert, so concurrent writers never corrupt the database
and the last write to an item wins.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pipeline.workspace.jobs as jobdb
from pipeline.workspace.db import (
    check_choice, check_name, check_number, connect, dumps, ensure_wal, loads, now_iso, reading, writing,
)
from pipeline.workspace.errors import WorkspaceError
from pipeline.workspace.jobs import JobRecord
from pipeline.workspace.records import IMAGE_LABELS, LAYOUTS, TAG_STATUSES, CategoryRecord, ModelRecord, ScoreRow
from pipeline.workspace.schema import migrate, user_version

DB_NAME = "workspace.sqlite"
"""File name of the workspace database inside the workspace folder."""

_PER_CATEGORY_TABLES = ("thresholds", "image_labels", "tags", "models", "scores")
"""Tables keyed by a ``category`` column; cleared with the category (jobs are kept as history)."""


class Workspace:
    """A project workspace folder; create with ``Workspace.create`` or ``Workspace.open``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db_path = path / DB_NAME

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> "Workspace":
        """Create the folder and database (an existing workspace is simply opened)."""
        return cls.open(path, create=True)

    @classmethod
    def open(cls, path: Path | str, create: bool = False) -> "Workspace":
        """Open the workspace at ``path``, bringing its schema up to date."""
        folder = Path(path).expanduser()
        if folder.exists() and not folder.is_dir():
            raise WorkspaceError(f"{folder} is a file, not a workspace folder")
        if not (folder / DB_NAME).is_file():
            if not create:
                why = "does not exist" if not folder.exists() else f"is not a workspace (no {DB_NAME})"
                raise WorkspaceError(f"{folder} {why}; create a workspace there first")
            folder.mkdir(parents=True, exist_ok=True)
        workspace = cls(folder.resolve())
        workspace._prepare()
        return workspace

    def _prepare(self) -> None:
        try:
            conn = connect(self.db_path)
            try:
                # WAL lets readers (the UI polling a job) run while a writer commits.
                ensure_wal(conn)
                migrate(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"{self.db_path} is not a usable workspace database: {exc}") from exc
        except WorkspaceError as exc:
            raise WorkspaceError(f"{self.db_path}: {exc}") from exc

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        with reading(self.db_path) as conn:
            return user_version(conn)

    # --- categories ------------------------------------------------------------------------

    def add_category(self, name: str, data_root: Path, layout: str) -> CategoryRecord:
        """Register a category, or update its data root and layout (keeping ``added_at``)."""
        check_name(name, "category name")
        check_choice(layout, LAYOUTS, "layout")
        root = str(Path(data_root).expanduser().absolute())
        with writing(self.db_path) as conn:
            conn.execute(
                "INSERT INTO categories (name, data_root, layout, added_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET data_root = excluded.data_root, layout = excluded.layout",
                (name, root, layout, now_iso()),
            )
            row = conn.execute(
                "SELECT name, data_root, layout, added_at FROM categories WHERE name = ?", (name,)
            ).fetchone()
        return _category(row)

    def categories(self) -> list[CategoryRecord]:
        """All categories, sorted by name."""
        with reading(self.db_path) as conn:
            rows = conn.execute(
                "SELECT name, data_root, layout, added_at FROM categories ORDER BY name"
            ).fetchall()
        return [_category(row) for row in rows]

    def category(self, name: str) -> CategoryRecord:
        """The category called ``name``; WorkspaceError listing the known ones otherwise."""
        known = self.categories()
        for record in known:
            if record.name == name:
                return record
        names = ", ".join(r.name for r in known) or "none yet"
        raise WorkspaceError(f"unknown category {name!r} in {self.path}; known categories: {names}")

    def remove_category(self, name: str, keep_files: bool = False) -> None:
        """Forget a category: its records and (unless ``keep_files``) its folder; no-op if unknown.

        Job records are kept as history. Refused while a job of this category is running.
        """
        check_name(name, "category name")
        self.mark_stale_jobs()
        with writing(self.db_path) as conn:
            for job in jobdb.select_jobs(conn, -1, "running"):
                if job.category == name:
                    raise WorkspaceError(f"category {name!r} has a running job ({job.id}); cancel it first")
            conn.execute("DELETE FROM categories WHERE name = ?", (name,))
            conn.execute("DELETE FROM settings WHERE scope = ?", (name,))
            for table in _PER_CATEGORY_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE category = ?", (name,))
        if not keep_files:
            shutil.rmtree(self.path / "categories" / name, ignore_errors=True)

    # --- folders ---------------------------------------------------------------------------

    def category_dir(self, category: str) -> Path:
        """``<workspace>/categories/<category>/``, created on demand."""
        folder = self.path / "categories" / check_name(category, "category name")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def method_dir(self, category: str, method: str) -> Path:
        """``<workspace>/categories/<category>/<method>/``, created on demand."""
        folder = self.category_dir(category) / check_name(method, "method name")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def relative(self, path: Path) -> str:
        """``path`` (inside the workspace) relative to the workspace folder, with '/' separators."""
        absolute = Path(path).expanduser().absolute()
        for candidate in (absolute, absolute.resolve()):
            try:
                return candidate.relative_to(self.path).as_posix()
            except ValueError:
                continue
        raise WorkspaceError(f"{path} is not inside the workspace {self.path}")

    def resolve(self, rel: str) -> Path:
        """Absolute path of a workspace-relative path; refuses paths that leave the workspace."""
        relative = Path(rel)
        normal = Path(os.path.normpath(self.path / relative))
        if relative.is_absolute() or not normal.is_relative_to(self.path):
            raise WorkspaceError(f"{rel!r} is not a path inside the workspace {self.path}")
        return normal

    # --- settings --------------------------------------------------------------------------

    def set_setting(self, key: str, value: Any, category: str | None = None) -> None:
        """Store a JSON value, global (``category=None``) or for one category."""
        scope = _scope(key, category)
        text = dumps(value, f"setting {key!r}")
        with writing(self.db_path) as conn:
            conn.execute(
                "INSERT INTO settings (scope, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (scope, key, text, now_iso()),
            )

    def get_setting(self, key: str, default: Any = None, category: str | None = None) -> Any:
        """A stored value, or ``default``; a category setting does not fall back to the global one."""
        scope = _scope(key, category)
        with reading(self.db_path) as conn:
            row = conn.execute(
                "SELECT value FROM settings WHERE scope = ? AND key = ?", (scope, key)
            ).fetchone()
        return default if row is None else loads(row[0])

    # --- thresholds ------------------------------------------------------------------------

    def set_threshold(self, category: str, method: str, value: float, note: str = "") -> None:
        """Set the decision threshold of ``method`` on ``category`` (finite float)."""
        number = check_number(value, "threshold")
        with writing(self.db_path) as conn:
            conn.execute(
                "INSERT INTO thresholds (category, method, value, note, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (category, method) DO UPDATE SET value = excluded.value,"
                " note = excluded.note, updated_at = excluded.updated_at",
                (category, method, number, str(note), now_iso()),
            )

    def get_threshold(self, category: str, method: str) -> float | None:
        """The threshold, or ``None`` when none was set."""
        with reading(self.db_path) as conn:
            row = conn.execute(
                "SELECT value FROM thresholds WHERE category = ? AND method = ?", (category, method)
            ).fetchone()
        return None if row is None else float(row[0])

    # --- image labels and tags -------------------------------------------------------------

    def set_image_label(self, category: str, image_key: str, label: str | None) -> None:
        """Label an image (one of ``IMAGE_LABELS``); ``None`` removes its label."""
        with writing(self.db_path) as conn:
            if label is None:
                conn.execute(
                    "DELETE FROM image_labels WHERE category = ? AND image_key = ?", (category, image_key)
                )
                return
            conn.execute(
                "INSERT INTO image_labels (category, image_key, label, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (category, image_key) DO UPDATE SET label = excluded.label,"
                " updated_at = excluded.updated_at",
                (category, image_key, check_choice(label, IMAGE_LABELS, "image label"), now_iso()),
            )

    def image_labels(self, category: str) -> dict[str, str]:
        """image key -> label for the category, in key order."""
        with reading(self.db_path) as conn:
            rows = conn.execute(
                "SELECT image_key, label FROM image_labels WHERE category = ? ORDER BY image_key",
                (category,),
            ).fetchall()
        return dict(rows)

    def set_tag(self, category: str, tag: str, status: str) -> None:
        """Record the user's decision (one of ``TAG_STATUSES``) about a component tag."""
        with writing(self.db_path) as conn:
            conn.execute(
                "INSERT INTO tags (category, tag, status, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (category, tag) DO UPDATE SET status = excluded.status,"
                " updated_at = excluded.updated_at",
                (category, tag, check_choice(status, TAG_STATUSES, "tag status"), now_iso()),
            )

    def tags(self, category: str) -> dict[str, str]:
        """tag -> status for the category, in tag order."""
        with reading(self.db_path) as conn:
            rows = conn.execute(
                "SELECT tag, status FROM tags WHERE category = ? ORDER BY tag", (category,)
            ).fetchall()
        return dict(rows)

    # --- models ----------------------------------------------------------------------------

    def record_model(
        self, category: str, method: str, files: dict[str, str], settings: dict, metrics: dict | None = None
    ) -> ModelRecord:
        """Record (replacing any previous) the fitted model of ``method`` on ``category``."""
        record = ModelRecord(
            category, method, {str(k): self._stored_path(v) for k, v in files.items()},
            dict(settings), dict(metrics or {}), now_iso(),
        )
        values = (
            dumps(record.files, "model files"), dumps(record.settings, "model settings"),
            dumps(record.metrics, "model metrics"),
        )
        with writing(self.db_path) as conn:
            conn.execute(
                "INSERT INTO models (category, method, files, settings, metrics, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (category, method) DO UPDATE SET"
                " files = excluded.files, settings = excluded.settings, metrics = excluded.metrics,"
                " created_at = excluded.created_at",
                (category, method, *values, record.created_at),
            )
        return record

    def model_record(self, category: str, method: str) -> ModelRecord | None:
        """The recorded model, or ``None`` when the method was never fitted on the category."""
        with reading(self.db_path) as conn:
            row = conn.execute(
                "SELECT category, method, files, settings, metrics, created_at FROM models"
                " WHERE category = ? AND method = ?", (category, method),
            ).fetchone()
        if row is None:
            return None
        return ModelRecord(row[0], row[1], loads(row[2]), loads(row[3]), loads(row[4]), row[5])

    def update_model_metrics(self, category: str, method: str, metrics: dict) -> None:
        """Merge ``metrics`` into the model's metrics (new keys win)."""
        with writing(self.db_path) as conn:
            row = conn.execute(
                "SELECT metrics FROM models WHERE category = ? AND method = ?", (category, method)
            ).fetchone()
            if row is None:
                raise WorkspaceError(f"no {method!r} model recorded for category {category!r}; fit it first")
            merged = dumps({**loads(row[0]), **metrics}, "model metrics")
            conn.execute(
                "UPDATE models SET metrics = ? WHERE category = ? AND method = ?", (merged, category, method)
            )

    # --- scores ----------------------------------------------------------------------------

    def save_scores(self, category: str, method: str, rows: list[ScoreRow]) -> None:
        """Replace, in one transaction, the scores of every split present in ``rows``."""
        values = [self._score_values(category, method, row) for row in rows]
        seen: set[tuple[str, str]] = set()
        for value in values:
            if (value[2], value[3]) in seen:
                raise WorkspaceError(f"image {value[3]!r} appears twice in split {value[2]!r}")
            seen.add((value[2], value[3]))
        with writing(self.db_path) as conn:
            for split in sorted({value[2] for value in values}):
                conn.execute(
                    "DELETE FROM scores WHERE category = ? AND method = ? AND split = ?",
                    (category, method, split),
                )
            conn.executemany(
                "INSERT INTO scores (category, method, split, image_key, kind, score, map_file)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", values,
            )

    def scores(self, category: str, method: str, split: str | None = None) -> list[ScoreRow]:
        """Stored scores, worst (highest) first; ties in image-key order."""
        sql = "SELECT image_key, split, kind, score, map_file FROM scores WHERE category = ? AND method = ?"
        args: tuple = (category, method)
        if split is not None:
            sql, args = sql + " AND split = ?", (*args, split)
        with reading(self.db_path) as conn:
            rows = conn.execute(sql + " ORDER BY score DESC, image_key", args).fetchall()
        return [ScoreRow(*row) for row in rows]

    def _score_values(self, category: str, method: str, row: ScoreRow) -> tuple:
        score = check_number(row.score, f"score of {row.image_key!r}", allow_inf=True)
        map_file = None if row.map_file is None else self._stored_path(row.map_file)
        return (category, method, str(row.split), str(row.image_key), str(row.kind), score, map_file)

    def _stored_path(self, path: str | Path) -> str:
        # Absolute paths inside the workspace are stored relative so the folder can move.
        return self.relative(Path(path)) if Path(path).is_absolute() else Path(path).as_posix()

    # --- jobs ------------------------------------------------------------------------------

    def start_job(self, kind: str, category: str, method: str, params: dict, pid: int | None = None) -> int:
        """Record a new running job and return its id; refused while another job is running.

        A running job whose process has died is first marked failed ("process ended unexpectedly").
        """
        self.mark_stale_jobs()
        with writing(self.db_path) as conn:
            jobdb.mark_stale(conn)  # again under the write lock: a job may have died meanwhile
            return jobdb.insert_job(conn, kind, category, method, params, pid)

    def update_job(
        self, job_id: int, *, stage: str | None = None, step: int | None = None, total: int | None = None,
        message: str | None = None, metrics: dict | None = None, pid: int | None = None,
    ) -> None:
        """Update a job's progress; ``None`` leaves a field as is, ``metrics`` merges keys."""
        # Coerced here: progress often arrives as numpy integers, which sqlite3 cannot bind.
        fields = {"stage": (stage, str), "step": (step, int), "total": (total, int),
                  "message": (message, str), "pid": (pid, int)}
        changes = {column: kind(value) for column, (value, kind) in fields.items() if value is not None}
        with writing(self.db_path) as conn:
            jobdb.change_job(conn, job_id, changes, metrics)

    def finish_job(self, job_id: int, status: str, message: str = "") -> None:
        """End a job as "done", "failed" or "cancelled"."""
        final = check_choice(status, jobdb.FINAL_STATUSES, "final job status")
        changes = {"status": final, "message": str(message)}
        with writing(self.db_path) as conn:
            jobdb.change_job(conn, job_id, changes, None)

    def jobs(self, limit: int = 50) -> list[JobRecord]:
        """The most recent jobs, newest first."""
        with reading(self.db_path) as conn:
            return jobdb.select_jobs(conn, limit)

    def job(self, job_id: int) -> JobRecord:
        """The job with this id; WorkspaceError when there is none."""
        with reading(self.db_path) as conn:
            return jobdb.select_job(conn, job_id)

    def mark_stale_jobs(self) -> list[int]:
        """Mark running jobs whose process is gone as failed; returns their ids."""
        with writing(self.db_path) as conn:
            return jobdb.mark_stale(conn)


def _category(row: tuple) -> CategoryRecord:
    return CategoryRecord(name=row[0], data_root=Path(row[1]), layout=row[2], added_at=row[3])


def _scope(key: str, category: str | None) -> str:
    if not isinstance(key, str) or not key:
        raise WorkspaceError(f"setting key must be a non-empty string, got {key!r}")
    return "" if category is None else check_name(category, "category name")


__all__ = [
    "DB_NAME",
    "CategoryRecord",
    "JobRecord",
    "ModelRecord",
    "ScoreRow",
    "Workspace",
    "WorkspaceError",
]
