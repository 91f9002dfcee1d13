"""Two processes or two threads (two browser tabs) writing one workspace: nothing lost or corrupt."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

from pipeline.workspace import Workspace

N_WRITES = 100


def _write_many(path: str, writer: str, barrier) -> None:
    """Interleave label, setting, merged-metric and contested writes with the other writer."""
    ws = Workspace.open(path)
    barrier.wait()  # start together so the writes really overlap
    for i in range(N_WRITES):
        ws.set_image_label("c", f"{writer}/{i:03d}", "good" if i % 2 else "bad")
        ws.set_setting(f"{writer}.{i}", {"writer": writer, "i": i}, category="c")
        # read-modify-write: only safe if the merge holds the write lock while it reads
        ws.update_model_metrics("c", "m", {f"{writer}.{i}": i})
        ws.set_tag("c", "contested", "keep" if writer == "a" else "drop")


def _write_one_label(path: str, label: str) -> None:
    Workspace.open(path).set_image_label("c", "shared", label)


def _prepared(tmp_path: Path) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    ws.record_model("c", "m", {}, {})
    return ws


def _assert_complete(ws: Workspace) -> None:
    labels = ws.image_labels("c")
    assert len(labels) == 2 * N_WRITES
    assert all(labels[f"{w}/{i:03d}"] == ("good" if i % 2 else "bad") for w in "ab" for i in range(N_WRITES))
    assert all(ws.get_setting(f"{w}.{i}", category="c") == {"writer": w, "i": i} for w in "ab" for i in range(N_WRITES))
    assert ws.model_record("c", "m").metrics == {f"{w}.{i}": i for w in "ab" for i in range(N_WRITES)}
    assert ws.tags("c")["contested"] in ("keep", "drop")
    with sqlite3.connect(ws.db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    ws = _prepared(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_write_many, args=(str(ws.path), w, barrier)) for w in "ab"]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    _assert_complete(Workspace.open(ws.path))


def test_two_threads_share_one_workspace_object(tmp_path: Path) -> None:
    ws = _prepared(tmp_path)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(writer: str) -> None:
        try:
            _write_many(str(ws.path), writer, barrier)
        except BaseException as exc:  # surface a thread's failure in the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    _assert_complete(ws)


def test_last_write_wins_per_item(tmp_path: Path) -> None:
    tab_a = Workspace.create(tmp_path / "ws")
    tab_b = Workspace.open(tmp_path / "ws")
    tab_a.set_image_label("c", "img", "good")
    tab_a.set_image_label("c", "other", "logical")
    tab_b.set_image_label("c", "img", "structural")
    assert tab_a.image_labels("c") == {"img": "structural", "other": "logical"}  # other item untouched
    tab_a.set_threshold("c", "m", 1.0)
    tab_b.set_threshold("c", "m", 2.0)
    assert tab_a.get_threshold("c", "m") == 2.0
    ctx = multiprocessing.get_context("spawn")
    for label in ("bad", "good"):  # one process after the other
        proc = ctx.Process(target=_write_one_label, args=(str(tab_a.path), label))
        proc.start()
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert tab_b.image_labels("c")["shared"] == "good"


def _create_and_label(path: str, key: str, barrier) -> None:
    barrier.wait()
    Workspace.create(path).set_image_label("c", key, "good")


def test_two_processes_create_the_same_new_workspace(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    path = str(tmp_path / "new" / "ws")
    procs = [ctx.Process(target=_create_and_label, args=(path, key, barrier)) for key in ("x", "y")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert Workspace.open(path).image_labels("c") == {"x": "good", "y": "good"}
