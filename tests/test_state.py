"""The state database: its migrations keep what an older calsync stored; its journal."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC
from pathlib import Path

import pytest

from calsync.ledger import load_usage, usage_report
from calsync.state import MIGRATIONS, open_state, unlogged
from calsync.usage_config import UsageConfig

ROOT = Path(__file__).resolve().parent.parent
# Made by calsync at schema version 3 (commit 2231375) with
#   calsync usage --logs /calsync-v3-fixture/claude-logs    (a copy of examples/claude-logs)
#   calsync log --model sonnet --input 12000 --output 3000 --at 2026-11-03T10:00:00+00:00 \
#       --project my-app --note "API run"
# after which the logs were deleted: all it knows is in the ledger.
V3_STATE = ROOT / "tests" / "data" / "state-v3.sqlite3"
V3_LOGS = Path("/calsync-v3-fixture/claude-logs")


@pytest.fixture
def v3_env(tmp_path):
    if V3_LOGS.exists():
        pytest.skip(f"{V3_LOGS} exists here: the old ledger's logs must be gone for this test")
    state = tmp_path / "v3-state"
    state.mkdir()
    shutil.copy(V3_STATE, state / "state.sqlite3")
    return {"CALSYNC_STATE_DIR": str(state), "HOME": str(tmp_path)}


@pytest.fixture
def fresh(tmp_path):
    logs = tmp_path / "claude-logs"
    shutil.copytree(ROOT / "examples" / "claude-logs", logs)
    return logs, {"CALSYNC_STATE_DIR": str(tmp_path / "fresh-state"), "HOME": str(tmp_path)}


def _record(r):
    return (r.timestamp, r.session_id, r.cwd, r.git_branch, r.model, r.input_tokens,
            r.output_tokens, r.cache_creation_5m_tokens, r.cache_creation_1h_tokens,
            r.cache_read_tokens, r.cost_usd, r.manual)


def test_a_version_3_ledger_gives_after_migration_what_its_logs_give_now(v3_env, fresh):
    logs, fresh_env = fresh
    old = load_usage(UsageConfig(), v3_env, since=None, until=None, logs=[V3_LOGS])
    new = load_usage(UsageConfig(), fresh_env, since=None, until=None, logs=[logs])
    assert [_record(r) for r in old if not r.manual] == [_record(r) for r in new]
    assert len(new) > 90
    manual = [r for r in old if r.manual]
    assert [(m.model, m.input_tokens, m.output_tokens, m.project, m.note) for m in manual] == [
        ("sonnet", 12000, 3000, "my-app", "API run")]
    for by in ("day", "session", "project", "model"):
        migrated = usage_report(UsageConfig(), v3_env, by=by, tz=UTC, logs=[V3_LOGS]).rows
        now = usage_report(UsageConfig(), fresh_env, by=by, tz=UTC, logs=[logs]).rows
        assert [r for r in migrated if not _manual(r)] == now, by
        assert len(migrated) == len(now) + 1


def _manual(row: dict) -> bool:
    """The report row of the manual record (marked in each grouping's own way)."""
    return bool(row.get("manual")) or "(manual)" in str(row.get("model")) or (
        row.get("project") == "my-app")


def test_migration_4_keys_names_and_keeps_every_line(v3_env):
    path = Path(v3_env["CALSYNC_STATE_DIR"]) / "state.sqlite3"
    with sqlite3.connect(path) as before:
        lines = before.execute("SELECT COUNT(*), SUM(win) FROM usage_line").fetchone()
        sessions = {s for (s,) in before.execute("SELECT DISTINCT session FROM usage_line")}
    conn = open_state(path.parent)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (len(MIGRATIONS),)
        assert conn.execute("SELECT COUNT(*), SUM(win) FROM usage_line").fetchone() == lines
        names = {t for (t,) in conn.execute("SELECT text FROM usage_name")}
        assert sessions <= names
        assert conn.execute("SELECT typeof(session), typeof(model) FROM usage_line "
                            "LIMIT 1").fetchone() == ("integer", "integer")
    finally:
        conn.close()


def test_a_python_with_an_old_sqlite_gets_one_clear_error(tmp_path, monkeypatch):
    import calsync.state as state
    from calsync.errors import ConfigError

    monkeypatch.setattr(state.sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(state.sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(ConfigError, match=r"SQLite \(3\.31\.1\) is too old: calsync needs 3\.36"):
        open_state(tmp_path)
    assert not (tmp_path / "state.sqlite3").exists()


def _journal(conn: sqlite3.Connection) -> tuple[str, int]:
    return (conn.execute("PRAGMA journal_mode").fetchone()[0],
            conn.execute("PRAGMA synchronous").fetchone()[0])


def test_a_large_write_bypasses_the_log_and_another_run_still_opens_meanwhile(tmp_path):
    conn = open_state(tmp_path)
    assert _journal(conn) == ("wal", 1)                 # WAL, synchronous NORMAL
    with unlogged(conn) as bypassed:
        assert bypassed
        assert _journal(conn) == ("delete", 2)          # a rollback journal, FULL
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO usage_scope (dirs) VALUES ('/logs')")
        other = open_state(tmp_path)                    # cannot go back to WAL: still opens
        conn.execute("COMMIT")
        assert other.execute("SELECT dirs FROM usage_scope").fetchall() == [("/logs",)]
        other.close()
    assert _journal(conn) == ("wal", 1)                 # back when the write is done
    conn.close()


def test_a_large_write_keeps_the_log_while_another_connection_is_open(tmp_path):
    conn = open_state(tmp_path)
    other = open_state(tmp_path)
    with unlogged(conn) as bypassed:
        assert not bypassed
        assert _journal(conn) == ("wal", 1)
    other.close()
    conn.close()

