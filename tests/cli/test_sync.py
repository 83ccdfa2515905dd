"""`calsync sync`, end to end through the command line (CliRunner), on the real clock.

Sessions are placed relative to now, so the default window (14 days back to now) holds them.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from icalendar import Calendar

from calsync.cli import cli
from calsync.syncing import run_lock
from tests.test_sync_servers import BERLIN, PLAN, vcalendar, vevent, write_logs

NOW = datetime.now(BERLIN).replace(microsecond=0)


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def session(uid: str, hours_ago: float, *extra: str, summary: str = "Session") -> str:
    """A two-hour event that started `hours_ago` hours ago."""
    return vevent(uid, stamp(at(hours_ago)), stamp(at(hours_ago - 2)), *extra, summary=summary)


@pytest.fixture
def calendar_file(tmp_path, monkeypatch) -> Path:
    """A calendar with one ended session (used), one ended unused, and a dentist visit."""
    path = tmp_path / "sessions.ics"
    path.write_text(vcalendar(
        session("used", 30, PLAN.strip()),
        session("unused", 50, PLAN.strip()),
        session("dentist", 40, summary="Dentist"),
    ), encoding="utf-8")
    logs = write_logs(tmp_path / "claude", [(at(29), 12_000)])
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(logs))
    return path


def statuses(path: Path) -> dict[str, str]:
    return {str(e["UID"]): str(e.get("X-CLAUDE-STATUS", ""))
            for e in Calendar.from_ical(path.read_text(encoding="utf-8")).walk("VEVENT")}


def test_sync_a_local_file_with_no_config(runner, calendar_file):
    result = runner.invoke(cli, ["sync", "--calendar", str(calendar_file)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"{calendar_file}: 2 occurrences, 2 updated, 0 unchanged, 0 conflicts, 0 failed")
    assert statuses(calendar_file) == {"used": "completed", "unused": "missed", "dentist": ""}


def test_quiet_prints_nothing_and_a_second_run_changes_nothing(runner, calendar_file):
    first = runner.invoke(cli, ["sync", "--calendar", str(calendar_file), "--quiet"])
    assert (first.exit_code, first.output) == (0, "")
    text = calendar_file.read_bytes()
    second = runner.invoke(cli, ["sync", "--calendar", str(calendar_file), "--json"])
    assert second.exit_code == 0
    counts = json.loads(second.stdout)
    assert {k: counts[k] for k in ("occurrences", "updated", "unchanged", "conflicts",
                                   "failed")} == {"occurrences": 2, "updated": 0,
                                                  "unchanged": 2, "conflicts": 0, "failed": 0}
    assert calendar_file.read_bytes() == text


def test_json_lists_the_changed_events(runner, calendar_file):
    first, last = (NOW - timedelta(days=3)).date(), NOW.date()
    result = runner.invoke(cli, ["sync", "--calendar", str(calendar_file), "--from",
                                 str(first), "--to", str(last), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["updated"] == 2
    changed = {c["uid"]: c for c in record["changed"]}
    assert changed["used"]["status"] == "completed"
    assert "X-CLAUDE-ACTUAL-TOKENS-TOTAL" in changed["used"]["fields"]
    assert datetime.fromisoformat(changed["used"]["start"]) == at(30)


def test_a_window_in_the_past_leaves_recent_sessions_alone(runner, calendar_file):
    day = (NOW - timedelta(days=10)).date()
    result = runner.invoke(cli, ["sync", "--calendar", str(calendar_file), "--from", str(day),
                                 "--to", str(day), "--json"])
    assert json.loads(result.stdout)["occurrences"] == 0
    assert statuses(calendar_file)["used"] == ""


def test_dry_run_prints_a_diff_per_event_and_writes_nothing(runner, calendar_file):
    text = calendar_file.read_bytes()
    result = runner.invoke(cli, ["sync", "--calendar", str(calendar_file), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert calendar_file.read_bytes() == text
    out = result.stdout
    assert out.count("+++ used (after sync)") == 1 and out.count("+++ unused (after sync)") == 1
    assert "+X-CLAUDE-STATUS:completed" in out and "+X-CLAUDE-STATUS:missed" in out
    assert "+DESCRIPTION:--- calsync actuals ---\n+  ACTUAL USAGE:" in out
    assert "--- used (now)" in out
    assert "2 would update" in out
    assert "dentist" not in out


def test_a_second_run_while_one_holds_the_lock_exits_0_with_a_notice(runner, calendar_file,
                                                                   tmp_path):
    with run_lock(Path(os.environ["CALSYNC_STATE_DIR"])):
        result = runner.invoke(cli, ["sync", "--calendar", str(calendar_file)])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "another calsync run holds" in result.stderr
    assert statuses(calendar_file)["used"] == ""


def test_an_unreadable_plan_fails_that_event_only_with_exit_1(runner, calendar_file):
    text = calendar_file.read_text(encoding="utf-8").replace(
        "END:VCALENDAR", vevent("broken", stamp(at(20)), stamp(at(19)),
                                "X-CLAUDE-TOKEN-BUDGET-TOTAL:lots").replace("\n", "\r\n")
        + "\r\nEND:VCALENDAR")
    calendar_file.write_text(text, encoding="utf-8")
    result = runner.invoke(cli, ["sync", "--calendar", str(calendar_file), "--quiet"])
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "UID broken" in line and "X-CLAUDE-TOKEN-BUDGET-TOTAL" in line and "lots" in line
    assert statuses(calendar_file)["used"] == "completed"


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--calendar", "nowhere.ics"], "nowhere.ics: --calendar: no such file",
                 id="missing-file"),
    pytest.param(["--from", "2026-11-20", "--to", "2026-11-10"], "--to: the window ends",
                 id="backwards-window"),
    pytest.param(["--tz", "Mars/Olympus"], "--tz: unknown time zone", id="bad-zone"),
])
def test_usage_errors_exit_2_with_one_line(runner, calendar_file, args, message):
    if "--calendar" not in args:
        args = ["--calendar", str(calendar_file), *args]
    result = runner.invoke(cli, ["sync", *args])
    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert line.startswith("calsync: ") and message in line


def test_no_logs_at_all_is_a_usage_error_not_a_calendar_of_missed_sessions(
        runner, calendar_file, monkeypatch, tmp_path):
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "nothing-here"))
    result = runner.invoke(cli, ["sync", "--calendar", str(calendar_file)])
    assert result.exit_code == 2
    assert "no Claude Code logs found" in result.output
    assert statuses(calendar_file)["unused"] == ""


def _git(repo: Path, *args: str, when: datetime | None = None) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="A", GIT_AUTHOR_EMAIL="a@example.com",
               GIT_COMMITTER_NAME="A", GIT_COMMITTER_EMAIL="a@example.com")
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when.isoformat()
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def test_the_config_gives_calendar_logs_and_the_project_repository(runner, calendar_file,
                                                                    tmp_path, monkeypatch):
    repo = tmp_path / "calsync-repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "engine.py").write_text("a\nb\nc\n")
    _git(repo, "add", "engine.py")
    _git(repo, "commit", "-qm", "engine", when=at(29.5))
    logs = os.environ["CLAUDE_CONFIG_DIR"]
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    config = tmp_path / "config.toml"
    config.write_text(f'[calendar]\nurl = "{calendar_file}"\n\n[usage]\nlogs = ["{logs}"]\n\n'
                      f'[projects.calsync]\npath = "{repo}"\n', encoding="utf-8")
    result = runner.invoke(cli, ["--config", str(config), "sync", "--quiet"])
    assert (result.exit_code, result.output) == (0, "")
    used = next(e for e in Calendar.from_ical(calendar_file.read_text(encoding="utf-8"))
                .walk("VEVENT") if str(e["UID"]) == "used")
    assert str(used["X-CLAUDE-GIT-COMMITS"]) == "1"
    assert str(used["X-CLAUDE-GIT-LINES-ADDED"]) == "3"
    assert "Git: 1 commit" in str(used["DESCRIPTION"])


def test_a_missing_repository_is_a_warning(runner, calendar_file, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[projects.calsync]\npath = "{tmp_path / "gone"}"\n', encoding="utf-8")
    result = runner.invoke(cli, ["--config", str(config), "sync", "--calendar",
                                 str(calendar_file)])
    assert result.exit_code == 0
    assert "calsync: warning:" in result.stderr and "gone" in result.stderr
    assert statuses(calendar_file)["used"] == "completed"


def test_sync_a_caldav_collection_with_the_password_from_the_environment(
        runner, radicale_server, monkeypatch, tmp_path):
    from calsync.backends.caldav import CaldavBackend
    from tests.servers import make_calendar

    url = make_calendar(radicale_server, "cli-sync")
    backend = CaldavBackend(url, username="alice", password="secret")
    backend.create(vcalendar(session("used", 30, PLAN.strip())), uid="used")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(write_logs(tmp_path / "claude",
                                                          [(at(29), 12_000)])))
    monkeypatch.setenv("CALSYNC_PASSWORD", "secret")
    result = runner.invoke(cli, ["sync", "--calendar", url, "--username", "alice", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["updated"] == 1
    [obj] = backend.get_many([h for h, _ in backend.list()])
    assert "X-CLAUDE-STATUS:completed" in obj.text
    assert "secret" not in result.output
    backend.close()
