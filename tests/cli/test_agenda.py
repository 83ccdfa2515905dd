"""`calsync agenda` end to end: .ics files, a config, real CalDAV servers, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from calsync.backends.caldav import CaldavBackend
from calsync.backends.icsfile import IcsFileBackend
from calsync.cli import cli

CLIENTS = Path(__file__).parent.parent / "data" / "clients"
GOOGLE = str(CLIENTS / "google.ics")
WIDE = {"COLUMNS": "200"}  # so table rows are not wrapped


def agenda(runner, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(cli, ["agenda", *args], env={**WIDE, **(env or {})})


def write_ics(path: Path, *events: str) -> str:
    body = "".join(e.strip() + "\n" for e in events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{body}END:VCALENDAR\n"
    path.write_bytes(text.replace("\n", "\r\n").encode())
    return str(path)


def session(uid: str, start: str, end: str, *extra: str) -> str:
    lines = "\n".join(extra)
    return (f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20261201T000000Z\nSUMMARY:Session {uid}\n"
            f"DTSTART:{start}\nDTEND:{end}\nX-CLAUDE-PROJECT:calsync\n"
            f"X-CLAUDE-TOKEN-BUDGET-TOTAL:50000\n{lines}\nEND:VEVENT")


# --- the table and the JSON --------------------------------------------------------------------


def test_the_table_lists_sessions_not_other_events(runner):
    result = agenda(runner, "--calendar", GOOGLE, "--from", "2026-12-07", "--to", "2026-12-31",
                    "--tz", "America/New_York")
    assert result.exit_code == 0, result.output
    assert ("Sessions of organized-ai-marketplace, 2026-12-07 to 2026-12-31 (America/New_York)"
            in result.stdout)
    rows = re.findall(r"│ (\w{3} \d+ Dec) +│ ([^│]+?) +│ ([^│]+?) +│", result.stdout)
    assert rows == [
        ("Mon 7 Dec", "14:00–17:00", "Planning & Architecture"),
        ("Wed 9 Dec", "14:00–17:00", "Implementation"),
        ("Fri 11 Dec", "all day", "Security Review"),
        ("Tue 22 Dec", "15:00–18:00", "Planning & Architecture"),
        ("Mon 28 Dec", "14:00–17:00", "Planning & Architecture"),
    ]
    assert "Dentist" not in result.stdout
    assert "50k (Opus 10k, Sonnet 40k)" in result.stdout


def test_the_table_shows_projects_when_several_and_marks_cancelled_ones(runner, tmp_path):
    path = write_ics(tmp_path / "two.ics",
                     session("a", "20261214T140000Z", "20261214T150000Z"),
                     session("b", "20261215T140000Z", "20261215T150000Z", "STATUS:CANCELLED")
                     .replace("X-CLAUDE-PROJECT:calsync", "X-CLAUDE-PROJECT:website"))
    result = agenda(runner, "--calendar", path, "--from", "2026-12-14", "--to", "2026-12-15",
                    "--tz", "UTC")
    assert result.exit_code == 0, result.output
    rows = re.findall(r"│ (\w{3} \d+ Dec) +│[^│]+│ (\w+) +│ ([^│]+?) +│", result.stdout)
    assert rows == [("Mon 14 Dec", "calsync", "Session a"),
                    ("Tue 15 Dec", "website", "Session b (cancelled)")]


def test_json_has_every_field_of_an_occurrence(runner):
    result = agenda(runner, "--calendar", GOOGLE, "--from", "2026-12-22", "--to", "2026-12-22",
                    "--tz", "Europe/Berlin", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{
        "uid": "5q1v2k8m3n4b6c7d8e9f0g1h2i@google.com",
        "recurrence_id": "2026-12-21T14:00:00-05:00",
        "start": "2026-12-22T21:00:00+01:00",
        "end": "2026-12-23T00:00:00+01:00",
        "all_day": False,
        "summary": "Claude Code: organized-ai-marketplace - Planning & Architecture",
        "status": "planned",
        "project": "organized-ai-marketplace",
        "session_type": "Planning & Architecture",
        "framework": None,
        "primary_model": "Sonnet 4.5",
        "budget": {"total": 50000, "opus": 10000, "sonnet": 40000, "haiku": None},
        "cost_budget_usd": None,
        "goals": [{"text": "Architecture decision record", "done": True},
                  {"text": "API surface sketch", "done": False}],
        "success_criteria": ["ADR merged"],
        "deliverables": ["docs/adr/0001.md"],
        "notes": [],
        "href": "5q1v2k8m3n4b6c7d8e9f0g1h2i@google.com",
    }]


@pytest.mark.parametrize(("name", "sessions", "cancelled"), [
    pytest.param("google.ics", 5, 0, id="google"),
    pytest.param("apple-icloud.ics", 6, 1, id="apple"),
    pytest.param("outlook.ics", 4, 0, id="outlook"),
    pytest.param("thunderbird.ics", 8, 0, id="thunderbird"),
])
def test_calendars_real_clients_export_are_read_without_complaint(runner, name, sessions,
                                                                   cancelled):
    result = agenda(runner, "--calendar", str(CLIENTS / name), "--from", "2026-12-07",
                    "--to", "2026-12-31", "--tz", "America/New_York", "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    listed = json.loads(result.stdout)
    assert len(listed) == sessions
    assert [o["status"] for o in listed].count("cancelled") == cancelled
    assert all(o["start"].endswith("-05:00") and o["budget"]["total"] for o in listed)


def test_floating_and_all_day_events_follow_tz(runner):
    floating = str(CLIENTS / "apple-icloud.ics")
    result = agenda(runner, "--calendar", floating, "--from", "2026-12-10", "--to",
                    "2026-12-18", "--tz", "Asia/Tokyo", "--json")
    by_type = {o["session_type"]: o for o in json.loads(result.stdout)}
    assert by_type["testing"]["start"] == "2026-12-10T09:00:00+09:00"  # floating
    assert by_type["documentation"]["start"] == "2026-12-18T00:00:00+09:00"  # all day
    assert by_type["documentation"]["all_day"] is True


def test_to_includes_its_whole_day(runner, tmp_path):
    path = write_ics(tmp_path / "s.ics",
                     session("last-minute", "20261214T235900Z", "20261215T000000Z"),
                     session("next-day", "20261215T000000Z", "20261215T010000Z"))
    result = agenda(runner, "--calendar", path, "--from", "2026-12-14", "--to", "2026-12-14",
                    "--tz", "UTC", "--json")
    assert [o["uid"] for o in json.loads(result.stdout)] == ["last-minute"]


def test_the_local_zone_is_the_default(runner):
    result = agenda(runner, "--calendar", GOOGLE, "--from", "2026-12-10", "--to",
                    "2026-12-10", "--json", env={"TZ": "Asia/Tokyo"})
    [only] = json.loads(result.stdout)
    assert only["start"] == "2026-12-10T04:00:00+09:00"


def test_the_calendar_comes_from_the_config_when_not_given(runner, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[calendar]\nurl = "{GOOGLE}"\n', encoding="utf-8")
    result = runner.invoke(cli, ["--config", str(config), "agenda", "--from", "2026-12-07",
                                 "--to", "2026-12-07", "--tz", "UTC", "--json"])
    assert result.exit_code == 0, result.output
    assert [o["session_type"] for o in json.loads(result.stdout)] == ["Planning & Architecture"]


def test_an_empty_window_says_so(runner):
    result = agenda(runner, "--calendar", GOOGLE, "--from", "2030-01-01", "--to", "2030-01-07",
                    "--tz", "UTC")
    assert result.exit_code == 0
    assert result.stdout.strip() == "No sessions from 2030-01-01 to 2030-01-07 (UTC)."


def test_a_generated_template_reads_back_as_planned(runner, tmp_path):
    """The issue's own example: six weeks of the weekly preset, three sessions a week."""
    sessions = tmp_path / "sessions.ics"
    made = runner.invoke(cli, ["template", "--preset", "weekly", "--project",
                               "organized-ai-marketplace", "--start", "2026-12-07", "--weeks",
                               "6", "--tz", "America/New_York", "-o", str(sessions)])
    assert made.exit_code == 0, made.output
    result = agenda(runner, "--calendar", str(sessions), "--from", "2026-12-07", "--to",
                    "2027-01-31", "--tz", "America/New_York", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert len(listed) == 18
    assert {(o["start"][11:16], o["budget"]["total"]) for o in listed} == {
        ("14:00", 50000), ("14:00", 100000), ("13:00", 75000)}


# --- bad input: one line each, exit code 2, the rest still listed -------------------------------


@pytest.mark.parametrize(("extra", "expected"), [
    pytest.param(("X-CLAUDE-TOKEN-BUDGET-OPUS:a lot",),
                 "UID bad: X-CLAUDE-TOKEN-BUDGET-OPUS: ", id="budget-not-a-number"),
    pytest.param(("X-CLAUDE-TOKEN-BUDGET-OPUS:40000", "X-CLAUDE-TOKEN-BUDGET-SONNET:40000"),
                 "UID bad: X-CLAUDE-TOKEN-BUDGET-TOTAL: the per-model budgets add up to 80000",
                 id="shares-above-total"),
])
def test_a_bad_event_is_one_line_and_exit_2_with_the_rest_listed(runner, tmp_path, extra,
                                                                 expected):
    path = write_ics(tmp_path / "plan.ics",
                     session("good", "20261214T140000Z", "20261214T150000Z"),
                     session("bad", "20261215T140000Z", "20261215T150000Z", *extra))
    result = agenda(runner, "--calendar", path, "--from", "2026-12-14", "--to", "2026-12-15",
                    "--tz", "UTC")
    assert result.exit_code == 2
    assert "Session good" in result.stdout and "Session bad" not in result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith(f"calsync: {path}: {expected}")


def test_an_unknown_time_zone_in_the_file_names_file_uid_and_zone(runner, tmp_path):
    path = write_ics(tmp_path / "tz.ics", session(
        "lost", "20261214T140000Z", "20261214T150000Z").replace(
        "DTSTART:20261214T140000Z", "DTSTART;TZID=Central Atlantis Time:20261214T140000"))
    result = agenda(runner, "--calendar", path, "--from", "2026-12-14", "--to", "2026-12-15",
                    "--tz", "UTC", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == []
    assert result.stderr == (f"calsync: {path}: UID lost: DTSTART: unknown time zone "
                             "'Central Atlantis Time' (use an IANA name like America/New_York "
                             "or include its VTIMEZONE)\n")


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param(["--tz", "Mars/Olympus"], "calsync: --tz: unknown time zone 'Mars/Olympus'",
                 id="unknown-tz-flag"),
    pytest.param(["--from", "2026-12-14", "--to", "2026-12-01"],
                 "calsync: --to: 2026-12-01 is before --from 2026-12-14", id="to-before-from"),
])
def test_bad_flags_are_one_line_and_exit_2(runner, args, expected):
    result = agenda(runner, "--calendar", GOOGLE, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(expected)
    assert len(result.stderr.splitlines()) == 1


def test_a_malformed_file_is_one_line_naming_it(runner, tmp_path):
    path = tmp_path / "broken.ics"
    path.write_text("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nEND:VCALENDAR\n", encoding="utf-8")
    result = agenda(runner, "--calendar", str(path), "--tz", "UTC")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"calsync: {path}: ")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize(("args", "expected"), [
    pytest.param([], "calsync: --calendar: no calendar given", id="no-calendar"),
    pytest.param(["--calendar", "nowhere.ics"], "calsync: nowhere.ics: --calendar: no such file",
                 id="missing-file"),
])
def test_a_missing_calendar_is_one_line_and_exit_2(runner, args, expected):
    result = agenda(runner, *args, "--tz", "UTC")
    assert result.exit_code == 2
    assert result.stderr.startswith(expected)


# --- a real CalDAV server ------------------------------------------------------------------------


def test_a_caldav_collection_lists_what_the_same_file_lists(runner, dav_server, new_calendar):
    """Apple's export, stored on Radicale and on strict Xandikos, one object per UID."""
    name = str(CLIENTS / "apple-icloud.ics")
    store = CaldavBackend(new_calendar, username=dav_server.username,
                          password=dav_server.password)
    for obj in IcsFileBackend(name).read_all():
        store.create(obj.text.replace("METHOD:PUBLISH\r\n", ""), uid=obj.href)
    window = ["--from", "2026-12-07", "--to", "2026-12-31", "--tz", "Europe/Berlin", "--json"]
    env = {"CALSYNC_PASSWORD": dav_server.password or ""}
    login = ["--username", dav_server.username] if dav_server.username else []
    from_server = agenda(runner, "--calendar", new_calendar, *login, *window, env=env)
    from_file = agenda(runner, "--calendar", name, *window)
    assert from_server.exit_code == 0, from_server.output
    listed = json.loads(from_server.stdout)
    assert all(o.pop("href").startswith("/") for o in listed)
    expected = json.loads(from_file.stdout)
    for o in expected:
        del o["href"]
    assert listed == expected and len(listed) == 6
