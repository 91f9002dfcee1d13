"""Schema versioning and opening folders that are not (yet) workspaces."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipeline.workspace import DB_NAME, SCHEMA_VERSION, Workspace, WorkspaceError
from pipeline.workspace.schema import MIGRATIONS, migrate


def _user_version(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def test_fresh_database_is_current_and_in_wal_mode(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "new" / "ws")
    assert ws.schema_version() == SCHEMA_VERSION == len(MIGRATIONS) == 1
    assert _user_version(ws.path / DB_NAME) == SCHEMA_VERSION
    with sqlite3.connect(ws.path / DB_NAME) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"categories", "settings", "thresholds", "image_labels", "tags", "models", "scores", "jobs"} <= tables
    record = ws.add_category("c", tmp_path, "loco")
    assert datetime.fromisoformat(record.added_at).utcoffset() == timedelta(0)


def test_create_twice_and_migrate_again_change_nothing(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.set_image_label("c", "k", "good")
    again = Workspace.create(tmp_path / "ws")
    assert again.image_labels("c") == {"k": "good"}
    conn = sqlite3.connect(ws.db_path, isolation_level=None)
    try:
        assert migrate(conn) == SCHEMA_VERSION
    finally:
        conn.close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    with sqlite3.connect(ws.db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    message = f"newer version of the workbench \\(schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION}\\); upgrade"
    with pytest.raises(WorkspaceError, match=message):
        Workspace.open(tmp_path / "ws")
    assert _user_version(ws.db_path) == SCHEMA_VERSION + 1  # left untouched


def test_not_a_workspace_names_the_path(tmp_path: Path) -> None:
    plain = tmp_path / "photos"
    plain.mkdir()
    with pytest.raises(WorkspaceError, match=f"{re.escape(str(plain))}.*not a workspace"):
        Workspace.open(plain)
    with pytest.raises(WorkspaceError, match=re.escape(f"{tmp_path / 'missing'} does not exist")):
        Workspace.open(tmp_path / "missing")
    assert not (tmp_path / "missing").exists() and list(plain.iterdir()) == []
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(WorkspaceError, match="is a file"):
        Workspace.open(tmp_path / "file.txt", create=True)


def test_corrupt_database_is_a_workspace_error(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / DB_NAME).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(WorkspaceError, match=f"{DB_NAME} is not a usable workspace database"):
        Workspace.open(tmp_path / "ws")


def test_migration_is_rolled_back_when_a_step_fails(tmp_path: Path, monkeypatch) -> None:
    import pipeline.workspace.schema as schema

    broken = (schema.MIGRATIONS[0] + ("CREATE TABLE categories (x)",),)  # duplicate table: fails
    monkeypatch.setattr(schema, "MIGRATIONS", broken)
    conn = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    finally:
        conn.close()
