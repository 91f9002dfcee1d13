"""Versioned schema of ``workspace.sqlite``.

``PRAGMA user_version`` holds the schema version. ``MIGRATIONS[i]`` takes a database from version
``i`` to ``i + 1``; a new version appends a migration and never edits an old one, so every
existing workspace can be brought forward. Allowed values (labels, statuses) are checked in
Python rather than by SQL CHECK constraints: SQLite cannot alter a constraint without rebuilding
the table, and new label kinds should not need a migration.
"""

from __future__ import annotations

import sqlite3

from pipeline.workspace.errors import WorkspaceError

_V1: tuple[str, ...] = (
    """CREATE TABLE categories (
        name TEXT PRIMARY KEY,
        data_root TEXT NOT NULL,
        layout TEXT NOT NULL,
        added_at TEXT NOT NULL)""",
    # scope is '' for global settings, else the category name ('' keeps the primary key unique,
    # NULL would not).
    """CREATE TABLE settings (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (scope, key))""",
    """CREATE TABLE thresholds (
        category TEXT NOT NULL,
        method TEXT NOT NULL,
        value REAL NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (category, method))""",
    """CREATE TABLE image_labels (
        category TEXT NOT NULL,
        image_key TEXT NOT NULL,
        label TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (category, image_key))""",
    """CREATE TABLE tags (
        category TEXT NOT NULL,
        tag TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (category, tag))""",
    """CREATE TABLE models (
        category TEXT NOT NULL,
        method TEXT NOT NULL,
        files TEXT NOT NULL,
        settings TEXT NOT NULL,
        metrics TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (category, method))""",
    """CREATE TABLE scores (
        category TEXT NOT NULL,
        method TEXT NOT NULL,
        split TEXT NOT NULL,
        image_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        score REAL NOT NULL,
        map_file TEXT,
        PRIMARY KEY (category, method, split, image_key))""",
    """CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        category TEXT NOT NULL,
        method TEXT NOT NULL,
        status TEXT NOT NULL,
        stage TEXT NOT NULL DEFAULT '',
        step INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        params TEXT NOT NULL,
        metrics TEXT NOT NULL,
        pid INTEGER,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX jobs_by_status ON jobs (status)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
"""Ordered migrations; entry ``i`` holds the statements taking version ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""Schema version this code writes (1)."""


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 for a new, empty one)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise WorkspaceError(
            f"this workspace was written by a newer version of the workbench "
            f"(schema {version} > {SCHEMA_VERSION}); upgrade the workbench"
        )


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the missing migrations in one transaction; returns the schema version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) with no open transaction.
    Raises WorkspaceError when the database is newer than this code.
    """
    _refuse_newer(user_version(conn))
    if user_version(conn) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    # IMMEDIATE takes the write lock first, so two processes opening a new workspace at the same
    # time migrate one after the other; the second then sees the new version and does nothing.
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = user_version(conn)
        _refuse_newer(current)
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "user_version"]
