"""Usage accounting end to end: the ledger's rules, incremental runs, `calsync usage` and `log`.

Every test gets its own state dir and HOME (tests/conftest.py); logs are written to tmp dirs.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync import ledger as ledger_module
from calsync.cli import cli
from calsync.config import Settings, parse_config
from calsync.ledger import load_usage, open_ledger, usage_report
from calsync.usage_config import UsageConfig
from tests.logcorpus import EXAMPLE_CWD, Features, generate, usage_line

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "claude-logs"


@pytest.fixture
def env(tmp_path):
    return {"CALSYNC_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path / "home")}


def write(root: Path, name: str, lines: list[str]) -> Path:
    path = root / "projects" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def records(root: Path, env, config: UsageConfig | None = None):
    return load_usage(config or UsageConfig(), env, since=None, until=None, logs=[root])


def counted(root: Path, env) -> list[tuple]:
    """The records as (output, cache read, session): each test's lines differ in these."""
    return sorted((r.output_tokens, r.cache_read_tokens, r.session_id)
                  for r in records(root, env))


def day_rows(root: Path, env, **kw) -> list[dict]:
    return usage_report(UsageConfig(), env, by="day", tz=UTC, logs=[root], **kw).rows


# --- which lines count (the README's de-duplication rule, one test each) ---------------------

def test_streaming_snapshots_count_once_with_the_largest_total(tmp_path, env):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10), usage_line("m1", "r1", 587),
                                  usage_line("m1", "r1", 200)])
    assert counted(tmp_path, env) == [(587, 0, "s-1")]


def test_a_sidechain_replay_of_a_known_message_is_dropped_even_when_larger(tmp_path, env):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 50, cache_read=20)])
    write(tmp_path, "p/s/subagents/agent-aside_question-x.jsonl", [
        usage_line("m1", "r-replay", 50, cache_read=50_000, side=True),
        usage_line("m2", "r2", 30, side=True)])
    assert counted(tmp_path, env) == [(30, 0, "s-1"), (50, 20, "s-1")]


def test_the_parent_wins_even_when_its_replay_is_read_first(tmp_path, env):
    write(tmp_path, "a/first.jsonl", [usage_line("m1", "r-replay", 10, cache_read=9000,
                                                 side=True)])
    write(tmp_path, "b/parent.jsonl", [usage_line("m1", "r1", 10), usage_line("m1", "r1", 100)])
    assert counted(tmp_path, env) == [(100, 0, "s-1")]


def test_sidechain_lines_of_one_message_count_once(tmp_path, env):
    write(tmp_path, "p/s/subagents/agent-a.jsonl", [usage_line("m1", "rA", 10, side=True),
                                                    usage_line("m1", "rB", 100, side=True)])
    assert counted(tmp_path, env) == [(100, 0, "s-1")]


def test_a_progress_copy_and_the_sub_agent_line_are_one_call(tmp_path, env):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 70, progress=True)])
    write(tmp_path, "p/s/subagents/agent-a.jsonl", [usage_line("m1", "r1", 70, side=True)])
    assert counted(tmp_path, env) == [(70, 0, "s-1")]


def test_two_requests_with_one_message_id_are_two_calls(tmp_path, env):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10), usage_line("m1", "r2", 20)])
    assert [r[0] for r in counted(tmp_path, env)] == [10, 20]


def test_lines_without_message_id_all_count(tmp_path, env):
    write(tmp_path, "p/s.jsonl", [usage_line(None, "r1", 10), usage_line(None, "r1", 10)])
    write(tmp_path, "p/s/subagents/agent-a.jsonl", [usage_line(None, "r2", 30, side=True)])
    assert counted(tmp_path, env) == [(10, 0, "s-1"), (10, 0, "s-1"), (30, 0, "s-1")]


def test_a_resumed_sessions_copies_stay_with_the_session_they_happened_in(tmp_path, env):
    old = usage_line("m1", "r1", 40, session="old", at="2026-11-02T10:00:00.000Z")
    write(tmp_path, "p/zzz-old.jsonl", [old])
    summary = '{"type":"summary","summary":"Retry on 412","leafUuid":"u-1"}'
    write(tmp_path, "p/aaa-new.jsonl", [summary,
                                        old.replace('"sessionId":"old"', '"sessionId":"new"'),
                                        usage_line("m2", "r2", 5, session="new",
                                                   at="2026-11-03T10:00:00.000Z")])
    assert counted(tmp_path, env) == [(5, 0, "new"), (40, 0, "old")]


# --- incremental runs give what a cold run gives -------------------------------------------------

def _cuts(size: int, fractions: list[float]) -> list[int]:
    return sorted({int(size * f) for f in fractions} | {size})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), fractions=st.lists(st.floats(0.01, 0.99), max_size=4),
       rewrite=st.booleans())
def test_appending_in_any_steps_gives_exactly_the_cold_result(tmp_path_factory, seed, fractions,
                                                              rewrite):
    base = tmp_path_factory.mktemp("inc")
    final = generate(base / "final", seed=seed, sessions=3, turns=3,
                     features=Features(content_scale=0.2))
    live = base / "live"
    env = {"CALSYNC_STATE_DIR": str(base / "state"), "HOME": str(base)}
    datas = {p: p.read_bytes() for p in final.files}
    for cut in _cuts(1000, fractions):          # grow every file to the same fraction
        for src, data in datas.items():
            dst = live / src.relative_to(final.root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            part = data[: len(data) * cut // 1000]
            if rewrite and cut < 1000 and dst.exists():
                part = part[: len(part) // 2]   # truncated: read again from the start
            dst.write_bytes(part)
        incremental = records(live, env)
    cold_env = {"CALSYNC_STATE_DIR": str(base / "cold-state"), "HOME": str(base)}
    cold = records(final.root, cold_env)

    def key(r):
        return (r.timestamp, r.session_id, r.output_tokens, r.cache_read_tokens, r.cost_usd)

    assert sorted(map(key, incremental)) == sorted(map(key, cold))
    for by in ("session", "day"):          # the sums kept for reports agree too
        assert (usage_report(UsageConfig(), env, by=by, tz=UTC, logs=[live]).rows
                == usage_report(UsageConfig(), cold_env, by=by, tz=UTC, logs=[final.root]).rows)
    truth = sorted((c.session_id, c.model, c.output_tokens, c.cache_read_tokens)
                   for c in final.calls)
    assert sorted((r.session_id, r.model, r.output_tokens, r.cache_read_tokens)
                  for r in cold) == truth


def test_records_outlive_the_logs(tmp_path, env):
    path = write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10)])
    assert len(records(tmp_path, env)) == 1
    path.unlink()
    write(tmp_path, "p/t.jsonl", [usage_line("m2", "r2", 20)])
    assert [r[0] for r in counted(tmp_path, env)] == [10, 20]


def test_a_rewritten_file_counts_only_its_new_content(tmp_path, env):
    path = write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10)])
    records(tmp_path, env)
    rewritten = usage_line("m2", "r2", 10, session="s-2")
    assert len(rewritten) == path.stat().st_size - 1         # same size, other content
    path.write_text(rewritten + "\n")
    assert counted(tmp_path, env) == [(10, 0, "s-2")]


def test_a_replaced_file_is_not_counted_twice(tmp_path, env):
    path = write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10)])
    records(tmp_path, env)
    copy = path.with_suffix(".tmp")
    shutil.copy(path, copy)
    os.replace(copy, path)                                 # a new inode, the same lines
    with path.open("a") as fh:
        fh.write(usage_line("m2", "r2", 5) + "\n")
    assert [r[0] for r in counted(tmp_path, env)] == [5, 10]


def test_a_line_written_in_two_parts_counts_once(tmp_path, env):
    line = usage_line("m1", "r1", 10)
    path = tmp_path / "projects" / "p" / "s.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(line[:50])
    assert records(tmp_path, env) == []
    with path.open("a") as fh:
        fh.write(line[50:] + "\n")
    assert [r.output_tokens for r in records(tmp_path, env)] == [10]


def test_a_warm_run_reads_nothing(tmp_path, env):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10)])
    first = usage_report(UsageConfig(), env, by="day", tz=UTC, logs=[tmp_path])
    second = usage_report(UsageConfig(), env, by="day", tz=UTC, logs=[tmp_path])
    assert first.scan.bytes_read > 0 and second.scan.bytes_read == 0
    assert first.rows == second.rows


def test_a_change_after_quiet_runs_is_still_read(tmp_path, env):
    path = write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10)])
    for _ in range(3):                  # read; then matched (its digest kept); then the digest
        assert [r[0] for r in counted(tmp_path, env)] == [10]
    with path.open("a") as fh:
        fh.write(usage_line("m2", "r2", 20) + "\n")
    assert [r[0] for r in counted(tmp_path, env)] == [10, 20]
    write(tmp_path, "p/t.jsonl", [usage_line("m3", "r3", 30)])
    assert [r[0] for r in counted(tmp_path, env)] == [10, 20, 30]


def test_a_warm_run_does_not_wait_for_another_runs_write(tmp_path, env):
    import sqlite3
    import time as clock

    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10)])
    first = day_rows(tmp_path, env)                 # reads the file
    other = sqlite3.connect(Path(env["CALSYNC_STATE_DIR"]) / "state.sqlite3",
                            isolation_level=None)
    other.execute("BEGIN IMMEDIATE")                # another run holds the write lock
    try:
        started = clock.monotonic()
        assert day_rows(tmp_path, env) == first     # matches: would keep the digest, but
        assert clock.monotonic() - started < 10     # does not wait 30 s for the lock
    finally:
        other.execute("ROLLBACK")
    assert other.execute("SELECT listing FROM usage_scope").fetchone() == (None,)
    assert day_rows(tmp_path, env) == first         # now it keeps it
    assert other.execute("SELECT listing FROM usage_scope").fetchone()[0] is not None
    other.close()


def test_many_processes_give_what_one_gives(tmp_path, env, monkeypatch):
    corpus = generate(tmp_path / "logs", seed=5, sessions=6, turns=6,
                      features=Features(binary_file=True))
    serial = usage_report(UsageConfig(), env, by="session", tz=UTC, logs=[corpus.root], workers=1)
    monkeypatch.setattr(ledger_module, "PIECE_BYTES", 40_000)   # many pieces, in a pool
    other = {**env, "CALSYNC_STATE_DIR": env["CALSYNC_STATE_DIR"] + "-2"}
    pooled = usage_report(UsageConfig(), other, by="session", tz=UTC, logs=[corpus.root],
                          workers=2)
    assert pooled.rows == serial.rows
    assert [str(p) for p in pooled.scan.problems] == [str(p) for p in serial.scan.problems]


def test_a_first_scan_bypasses_the_log_only_when_alone_and_gives_the_same_ledger(tmp_path, env,
                                                                              monkeypatch):
    from contextlib import contextmanager

    from calsync.state import open_state, unlogged

    corpus = generate(tmp_path / "logs", seed=7, sessions=4, turns=5)
    bypassed: list[bool] = []

    @contextmanager
    def watched(conn):
        with unlogged(conn) as done:
            bypassed.append(done)
            yield done

    monkeypatch.setattr(ledger_module, "unlogged", watched)
    plans = []
    plan = ledger_module.Ledger._plan
    monkeypatch.setattr(ledger_module.Ledger, "_plan",
                        lambda self, changed: plans.append(len(changed)) or plan(self, changed))
    alone = usage_report(UsageConfig(), env, by="session", tz=UTC, logs=[corpus.root])
    assert len(plans) == 1      # the switch is not taken for another run's write: no new plan
    usage_report(UsageConfig(), env, by="session", tz=UTC, logs=[corpus.root])  # warm: no write
    other_env = {**env, "CALSYNC_STATE_DIR": env["CALSYNC_STATE_DIR"] + "-2"}
    other = open_state(Path(other_env["CALSYNC_STATE_DIR"]))   # another run has it open
    watched_too = usage_report(UsageConfig(), other_env, by="session", tz=UTC,
                               logs=[corpus.root])
    other.close()
    assert bypassed == [True, False]
    assert watched_too.rows == alone.rows
    for state_dir in (env["CALSYNC_STATE_DIR"], other_env["CALSYNC_STATE_DIR"]):
        conn = open_state(Path(state_dir))
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        conn.close()


def test_scopes_never_mix(tmp_path, env):
    write(tmp_path / "a", "p/s.jsonl", [usage_line("m1", "r1", 10)])
    write(tmp_path / "b", "p/s.jsonl", [usage_line("m2", "r2", 20)])
    assert [r[0] for r in counted(tmp_path / "a", env)] == [10]
    assert [r[0] for r in counted(tmp_path / "b", env)] == [20]


def test_changed_prices_reprice_old_records_without_reading_the_logs(tmp_path, env):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 1_000_000, model="acme-1")])
    before = usage_report(UsageConfig(), env, by="model", tz=UTC, logs=[tmp_path])
    assert before.rows[0]["cost_usd"] is None and before.unpriced == ["acme-1"]
    priced = parse_config('[prices."acme-1"]\ninput = 0\noutput = 2.0\ncache_write_5m = 0\n'
                          "cache_write_1h = 0\ncache_read = 0\n")
    after = usage_report(UsageConfig.of(priced), env, by="model", tz=UTC, logs=[tmp_path])
    assert after.scan.bytes_read == 0
    assert after.rows[0]["cost_usd"] == 2.0 and after.unpriced == []


def test_changed_prices_and_a_new_copy_of_a_known_message_in_one_run(tmp_path, env):
    path = write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10, model="acme-1")])
    assert counted(tmp_path, env) == [(10, 0, "s-1")]
    with path.open("a") as fh:                  # the final snapshot of the same call
        fh.write(usage_line("m1", "r1", 30, model="acme-1") + "\n")
    priced = parse_config('[prices."acme-1"]\ninput = 0\noutput = 2.0\ncache_write_5m = 0\n'
                          "cache_write_1h = 0\ncache_read = 0\n")
    after = usage_report(UsageConfig.of(priced), env, by="model", tz=UTC, logs=[tmp_path])
    assert after.rows[0]["output_tokens"] == 30
    assert after.rows[0]["cost_usd"] == pytest.approx(30 * 2.0 / 1e6)


def test_load_usage_gives_records_in_a_window_with_manual_ones_marked(tmp_path, env, runner):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10, at="2026-11-02T15:00:00Z"),
                                  usage_line("m2", "r2", 10, at="2026-11-02T17:00:00Z")])
    result = runner.invoke(cli, ["log", "--model", "opus", "--input", "5", "--at",
                                 "2026-11-02T16:00:00+00:00", "--project", "calsync"],
                           env=env)
    assert result.exit_code == 0, result.output
    got = load_usage(UsageConfig(), env, since=datetime(2026, 11, 2, 14, tzinfo=UTC),
                     until=datetime(2026, 11, 2, 17, tzinfo=UTC), logs=[tmp_path])
    assert [(r.output_tokens, r.manual, r.project) for r in got] == [(10, False, "calsync"),
                                                                     (0, True, "calsync")]
    assert got[1].cost_usd == pytest.approx(5 * 5.0 / 1e6)


# --- the commands -----------------------------------------------------------------------------

def test_usage_reads_the_logs_the_config_names_not_those_of_the_environment(tmp_path, env,
                                                                            runner):
    write(tmp_path / "env", "p/s.jsonl", [usage_line("m1", "r1", 10)])
    write(tmp_path / "configured", "p/s.jsonl", [usage_line("m2", "r2", 20)])
    config = tmp_path / "config.toml"
    config.write_text(f'[usage]\nlogs = ["{tmp_path / "configured"}"]\n')
    result = runner.invoke(cli, ["usage", "--tz", "UTC", "--json"],
                           env={**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "env"),
                                "CALSYNC_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    assert [row["output_tokens"] for row in json.loads(result.stdout)] == [20]
    result = runner.invoke(cli, ["usage", "--tz", "UTC", "--json"],   # and the environment's
                           env={**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "env")})
    assert [row["output_tokens"] for row in json.loads(result.stdout)] == [10]

def test_the_usage_config_holds_what_the_settings_say():
    assert UsageConfig.of(Settings()) == UsageConfig()       # the same defaults
    assert UsageConfig.from_json(UsageConfig().to_json()) == UsageConfig()
    settings = parse_config(
        'state_dir = "/state"\n[usage]\nlogs = ["/logs"]\ntimezone = "Europe/Berlin"\n'
        '[projects.app]\npaths = ["/w/app"]\n[projects.bare]\npath = "/src/bare"\n'
        '[prices.m1]\ninput = 1\noutput = 2\ncache_write_5m = 3\ncache_write_1h = 4\n'
        'cache_read = 5\n')
    assert UsageConfig.of(settings) == UsageConfig(
        logs=(Path("/logs"),), timezone="Europe/Berlin", state_dir=Path("/state"),
        prices={"m1": {"input": 1, "output": 2, "cache_write_5m": 3, "cache_write_1h": 4,
                       "cache_read": 5}},
        project_paths={"app": ("/w/app",)})
    assert UsageConfig.from_json(UsageConfig.of(settings).to_json()) == UsageConfig.of(settings)


_USAGE_IN_A_PROCESS = """
import sys
from calsync.cli import main
sys.argv = ["calsync", "usage", "--json", "--tz", "UTC"]
try:
    main()
finally:
    print("pydantic" in sys.modules, file=sys.stderr)
"""


def test_usage_imports_pydantic_only_for_a_config_file_it_has_not_validated(tmp_path, env):
    import subprocess
    import sys

    for name, tokens in (("env", 10), ("configured", 20), ("edited", 30)):
        write(tmp_path / name, "p/s.jsonl", [usage_line(f"m{tokens}", "r1", tokens)])
    run_env = {**os.environ, **env, "CLAUDE_CONFIG_DIR": str(tmp_path / "env")}

    def usage() -> tuple[list[int], str]:
        done = subprocess.run([sys.executable, "-c", _USAGE_IN_A_PROCESS], env=run_env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return [row["output_tokens"] for row in json.loads(done.stdout)], done.stderr.split()[-1]

    assert usage() == ([10], "False")                   # no config file: the defaults
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "calsync" / "config.toml"   # the default place
    config.parent.mkdir(parents=True)
    config.write_text(f'[usage]\nlogs = ["{tmp_path / "configured"}"]\n')
    assert usage() == ([20], "True")                    # validated (pydantic), and kept
    assert usage() == ([20], "False")                   # the same file: what was kept
    config.write_text(f'[usage]\nlogs = ["{tmp_path / "edited"}"]\n')
    assert usage() == ([30], "True")                    # edited: validated again
    run_env["HOME"] = str(tmp_path / "elsewhere")       # `~` would mean another dir
    assert usage() == ([30], "True")


def test_a_config_file_that_does_not_validate_fails_every_time(tmp_path, env, runner):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10)])
    config = tmp_path / "config.toml"
    config.write_text('[usage]\ntimezone = 5\n')
    for _ in range(2):
        result = runner.invoke(cli, ["usage", "--logs", str(tmp_path)],
                               env={**env, "CALSYNC_CONFIG": str(config)})
        assert result.exit_code != 0
        assert "usage.timezone" in result.output
    assert not list(Path(os.environ["XDG_CACHE_HOME"]).rglob("usage-config.json"))
    result = runner.invoke(cli, ["usage", "--logs", str(tmp_path)],      # and a missing one
                           env={**env, "CALSYNC_CONFIG": str(tmp_path / "missing.toml")})
    assert result.exit_code != 0 and "no such file" in result.output


def test_usage_by_day_json_rows_are_exactly_the_documented_ones(tmp_path, env, runner):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 587, cache_read=100)])
    result = runner.invoke(cli, ["usage", "--logs", str(tmp_path), "--tz", "UTC", "--json"],
                           env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{
        "date": "2026-11-02", "model": "claude-sonnet-4-5-20250929", "input_tokens": 3,
        "output_tokens": 587, "cache_creation_tokens": 10, "cache_read_tokens": 100,
        "total_tokens": 700, "cost_usd": pytest.approx((3 * 3 + 587 * 15 + 10 * 3.75 + 100 * 0.3)
                                                       / 1e6)}]


def test_usage_table_groups_by_project_in_a_zone(tmp_path, env, runner):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10, at="2026-11-02T23:30:00Z"),
                                  usage_line("m2", "r2", 10, cwd="/w/Other",
                                             at="2026-11-01T12:00:00Z")])
    args = ["usage", "--logs", str(tmp_path), "--by", "project", "--since", "20261102",
            "--tz", "Europe/Berlin"]
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "calsync" in result.stdout and "Other" not in result.stdout
    assert "Total" in result.stdout


def test_days_follow_daylight_saving_changes_in_the_zone(tmp_path, env):
    at = ["2026-11-01T03:59:00Z", "2026-11-01T04:01:00Z",   # 23:59 and 00:01 EDT (UTC-4)
          "2026-11-02T04:30:00Z", "2026-11-02T05:01:00Z"]   # 23:30 and 00:01 EST (UTC-5)
    write(tmp_path, "p/s.jsonl", [usage_line(f"m{i}", "r", 10 ** i, at=t)
                                  for i, t in enumerate(at)])
    for by in ("day", "week", "month"):
        rows = usage_report(UsageConfig(), env, by=by, tz=ZoneInfo("America/New_York"),
                            logs=[tmp_path]).rows
        got = [(r.get("date") or r.get("week") or r.get("month"), r["output_tokens"])
               for r in rows]
        assert got == {"day": [("2026-10-31", 1), ("2026-11-01", 110), ("2026-11-02", 1000)],
                       "week": [("2026-10-26", 111), ("2026-11-02", 1000)],
                       "month": [("2026-10", 1), ("2026-11", 1110)]}[by]


def test_usage_project_filter(tmp_path, env, runner):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10),
                                  usage_line("m2", "r2", 20, cwd="/w/other")])
    result = runner.invoke(cli, ["usage", "--logs", str(tmp_path), "--project", "OTHER",
                                 "--by", "model", "--json"], env=env)
    assert [row["output_tokens"] for row in json.loads(result.stdout)] == [20]


def test_bad_input_is_reported_by_path_and_line_and_the_rest_counted(tmp_path, env, runner):
    good = usage_line("m1", "r1", 10)
    path = write(tmp_path, "p/s.jsonl", [good, "garbage", good[:40],
                                         usage_line("m2", "r2", 5, at="yesterday")])
    (tmp_path / "projects" / "p" / "core.jsonl").write_bytes(bytes(range(256)))
    result = runner.invoke(cli, ["usage", "--logs", str(tmp_path), "--json"], env=env)
    assert result.exit_code == 0
    assert [row["output_tokens"] for row in json.loads(result.stdout)] == [10]
    warning = result.stderr.strip()
    assert warning.count("\n") == 0 and warning.startswith("calsync: warning: 4 unreadable")
    assert f"{path.parent / 'core.jsonl'}:1, {path}:2, {path}:3 and 1 more" in warning


def test_no_logs_anywhere_is_exit_2_naming_where_calsync_looked(tmp_path, env, runner):
    result = runner.invoke(cli, ["usage"], env={**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "x")})
    assert result.exit_code == 2
    assert str(tmp_path / "x" / "projects") in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_an_unknown_model_warns_once_naming_it(tmp_path, env, runner):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10, model="acme-2")])
    result = runner.invoke(cli, ["usage", "--logs", str(tmp_path), "--json"], env=env)
    assert json.loads(result.stdout)[0]["cost_usd"] is None
    assert result.stderr.count("acme-2") == 2 and result.stderr.count("\n") == 1


def test_bad_flags_are_one_line_errors(tmp_path, env, runner):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10)])
    for args in (["usage", "--logs", str(tmp_path), "--since", "last week"],
                 ["usage", "--logs", str(tmp_path), "--tz", "Mars/Olympus"],
                 ["log", "--model", "sonnet", "--input", "1", "--at", "teatime"]):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 2, args
        assert result.stderr.count("\n") == 1 and args[-1] in result.stderr


def test_log_adds_a_manual_record_shown_as_manual(tmp_path, env, runner):
    write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10)])
    result = runner.invoke(cli, ["log", "--model", "sonnet", "--input", "12000", "--output",
                                 "3000", "--at", "2026-11-02T09:00:00+00:00", "--project", "p",
                                 "--note", "API batch"], env=env)
    assert result.exit_code == 0 and "15,000 tokens" in result.stdout
    result = runner.invoke(cli, ["usage", "--logs", str(tmp_path), "--tz", "UTC", "--json"],
                           env=env)
    rows = {row["model"]: row for row in json.loads(result.stdout)}
    assert rows["sonnet (manual)"]["total_tokens"] == 15_000
    assert rows["sonnet (manual)"]["cost_usd"] == pytest.approx((12000 * 3 + 3000 * 15) / 1e6)


def test_the_example_logs_fall_inside_the_example_calendars_sessions(env, runner):
    result = runner.invoke(cli, ["usage", "--logs", str(EXAMPLES), "--by", "session", "--tz",
                                 "America/New_York", "--json"], env=env)
    assert result.exit_code == 0, result.output
    windows = {0: (14, 17), 2: (14, 17), 4: (13, 16)}      # Mon, Wed, Fri
    sessions = json.loads(result.stdout)
    assert len(sessions) == 5
    for row in sessions:
        first, last = (datetime.fromisoformat(row[k]) for k in ("first_at", "last_at"))
        assert first.date() == last.date() and first.weekday() in windows
        lo, hi = windows[first.weekday()]
        assert lo <= first.hour and last.hour < hi
        assert row["project"] == Path(EXAMPLE_CWD).name


def test_open_ledger_follows_claude_config_dir(tmp_path, env):
    write(tmp_path / "cfg", "p/s.jsonl", [usage_line("m1", "r1", 10)])
    ledger = open_ledger(UsageConfig(), {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")})
    try:
        ledger.update()
        assert len(ledger.records()) == 1
    finally:
        ledger.conn.close()


def _kept_sums(ledger) -> list[tuple]:
    return ledger.conn.execute(
        "SELECT bucket, model, session, cwd, n, inp, out, cw5, cw1, cr, ROUND(cost, 9), "
        "unpriced, first_ts, last_ts FROM usage_agg WHERE scope = ? ORDER BY 1, 2, 3, 4",
        (ledger.scope,)).fetchall()


def _line_sums(ledger) -> list[tuple]:
    return ledger.conn.execute(
        f"SELECT ts / {ledger_module.BUCKET_US} AS b, model, COALESCE(session, 0), "
        "COALESCE(cwd, 0), COUNT(*), SUM(inp), SUM(out), SUM(cw5), SUM(cw1), SUM(cr), "
        "ROUND(TOTAL(cost), 9), SUM(cost IS NULL), MIN(ts), MAX(ts) FROM usage_line "
        "WHERE scope = ? AND win = 1 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        (ledger.scope,)).fetchall()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_first_scan_in_many_batches_keeps_the_sums_of_the_lines_that_count(tmp_path, env,
                                                                              monkeypatch,
                                                                              workers):
    # A first scan stores each line counting as it would on its own, then decides the
    # messages seen in several lines or files: the sums kept for reports must be exactly
    # those of the lines that count, whatever the batches held.
    corpus = generate(tmp_path / "logs", seed=11, sessions=6, turns=6)
    monkeypatch.setattr(ledger_module, "PIECE_BYTES", 200_000)  # batches of many pages
    usage_report(UsageConfig(), env, by="day", tz=UTC, logs=[corpus.root], workers=workers)
    ledger = open_ledger(UsageConfig(), env, logs=[corpus.root])
    try:
        kept = _kept_sums(ledger)
        assert len(kept) > 20
        assert kept == _line_sums(ledger)
        assert ledger.conn.execute("SELECT COUNT(*) FROM usage_line WHERE win = 0").fetchone()[0]
    finally:
        ledger.conn.close()


def test_a_file_that_fails_half_read_counts_nothing_until_it_is_read_whole(tmp_path, env,
                                                                          monkeypatch):
    from calsync.sources import claude_code as cc

    corpus = generate(tmp_path / "logs", seed=3, sessions=3, turns=8)
    big = max(corpus.files, key=lambda p: p.stat().st_size)
    monkeypatch.setattr(ledger_module, "PIECE_BYTES", big.stat().st_size // 3)
    read = cc.scan_range

    def failing(rng, *args, **kwargs):               # the disk fails after the first piece
        if rng.path == str(big) and rng.start > 0:
            return cc.RangeResult(rng.key, rng.start, rng.start, False, [], [],
                                  "Input/output error")
        return read(rng, *args, **kwargs)

    monkeypatch.setattr(cc, "scan_range", failing)
    first = usage_report(UsageConfig(), env, by="session", tz=UTC, logs=[corpus.root], workers=1)
    assert [u.split(":")[0] for u in first.scan.unreadable] == [str(big)]
    ledger = open_ledger(UsageConfig(), env, logs=[corpus.root])
    try:                                # nothing of it is kept, and the sums say so too
        assert ledger.conn.execute("SELECT COUNT(*) FROM usage_line l JOIN usage_file f ON "
                                   "f.id = l.file WHERE f.path = ?", (str(big),)).fetchone() == (0,)
        assert _kept_sums(ledger) == _line_sums(ledger)
    finally:
        ledger.conn.close()
    monkeypatch.setattr(cc, "scan_range", read)
    again = usage_report(UsageConfig(), env, by="session", tz=UTC, logs=[corpus.root], workers=1)
    clean = {**env, "CALSYNC_STATE_DIR": env["CALSYNC_STATE_DIR"] + "-clean"}
    assert again.rows == usage_report(UsageConfig(), clean, by="session", tz=UTC,
                                      logs=[corpus.root], workers=1).rows
    assert again.rows != first.rows


def test_a_run_overtaken_by_another_reads_nothing_twice(tmp_path, env, monkeypatch):
    path = write(tmp_path, "p/s.jsonl", [usage_line("m1", "r1", 10)])
    assert counted(tmp_path, env) == [(10, 0, "s-1")]
    with path.open("a") as fh:
        fh.write(usage_line("m2", "r2", 20) + "\n")
    write_ledger = ledger_module.Ledger._write

    def overtaken(self, *args):             # between this run's plan and its write lock,
        monkeypatch.setattr(ledger_module.Ledger, "_write", write_ledger)
        assert counted(tmp_path, env) == [(10, 0, "s-1"), (20, 0, "s-1")]  # another run reads
        return write_ledger(self, *args)

    monkeypatch.setattr(ledger_module.Ledger, "_write", overtaken)
    report = usage_report(UsageConfig(), env, by="session", tz=UTC, logs=[tmp_path])
    assert report.scan.bytes_read == 0          # it plans again under the lock: nothing left
    assert [row["output_tokens"] for row in report.rows] == [30]
