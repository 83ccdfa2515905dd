"""`calsync template` end to end through the command line, as a person runs it."""

from __future__ import annotations

import shlex
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import icalendar
import pytest
import recurring_ical_events

from calsync.cli import cli

ROOT = Path(__file__).parents[1]
ISSUE_COMMAND = ["template", "--preset", "weekly", "--project", "organized-ai-marketplace",
                 "--start", "2026-12-07", "--weeks", "6", "--tz", "America/New_York"]
# examples/sessions.ics is made with exactly this command (README, "Templates")
EXAMPLE_COMMAND = ["template", "--preset", "weekly", "--project", "organized-ai-marketplace",
                   "--start", "2026-11-02", "--weeks", "10", "--tz", "America/New_York",
                   "--dtstamp", "2026-11-01T00:00:00Z"]


def run(runner, *args: str):
    return runner.invoke(cli, list(args), catch_exceptions=False)


def test_the_issue_command_writes_an_importable_file(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(runner, *ISSUE_COMMAND, "-o", "sessions.ics")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "wrote 3 weekly series to sessions.ics" in result.stderr
    calendar = icalendar.Calendar.from_ical((tmp_path / "sessions.ics").read_bytes())
    assert calendar["METHOD"] == "PUBLISH"
    found = recurring_ical_events.of(calendar).between(date(2026, 12, 7), date(2027, 2, 1))
    assert len(found) == 18
    first = min(found, key=lambda e: e.start)
    assert str(first["SUMMARY"]) == \
        "Claude Code: organized-ai-marketplace - Planning & Architecture"
    assert first.start.isoformat() == "2026-12-07T14:00:00-05:00"
    assert max(e.start for e in found).isoformat() == "2027-01-15T13:00:00-05:00"


def test_without_output_the_calendar_goes_to_stdout(runner, tmp_path):
    to_file = run(runner, *ISSUE_COMMAND, "--dtstamp", "2026-11-01T00:00:00Z",
                  "-o", str(tmp_path / "s.ics"))
    to_stdout = run(runner, *ISSUE_COMMAND, "--dtstamp", "2026-11-01T00:00:00Z")
    assert to_file.exit_code == to_stdout.exit_code == 0
    assert to_stdout.stdout_bytes == (tmp_path / "s.ics").read_bytes()
    assert to_stdout.stdout_bytes.startswith(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")


def test_the_bundled_example_is_what_the_documented_command_makes(runner):
    result = run(runner, *EXAMPLE_COMMAND)
    assert result.exit_code == 0
    assert result.stdout_bytes == (ROOT / "examples" / "sessions.ics").read_bytes()


def test_without_dtstamp_every_event_is_stamped_now_and_uids_do_not_change(runner):
    first = icalendar.Calendar.from_ical(run(runner, *ISSUE_COMMAND).stdout_bytes)
    second = icalendar.Calendar.from_ical(run(runner, *ISSUE_COMMAND).stdout_bytes)
    stamps = [e.decoded("DTSTAMP") for e in first.walk("VEVENT")]
    assert all(abs(datetime.now(UTC) - stamp) < timedelta(minutes=5) for stamp in stamps)
    assert [e["UID"] for e in first.walk("VEVENT")] == [e["UID"] for e in second.walk("VEVENT")]


def test_start_defaults_to_the_next_monday(runner):
    calendar = icalendar.Calendar.from_ical(
        run(runner, "template", "--project", "p", "--tz", "UTC", "--weeks", "1").stdout_bytes)
    starts = sorted(e.decoded("DTSTART") for e in calendar.walk("VEVENT"))
    today = date.today()
    assert starts[0].date().weekday() == 0
    assert today <= starts[0].date() < today + timedelta(days=7)


def test_calendar_name_and_no_method(runner):
    named = run(runner, *ISSUE_COMMAND, "--calendar-name", "Claude sessions").stdout_bytes
    plain = run(runner, *ISSUE_COMMAND).stdout_bytes
    for_server = run(runner, *ISSUE_COMMAND, "--no-method").stdout_bytes
    assert b"X-WR-CALNAME:Claude sessions\r\n" in named
    assert b"X-WR-CALNAME" not in plain
    assert b"METHOD" not in for_server and b"METHOD:PUBLISH\r\n" in plain


def test_list_shows_presets_sessions_and_cost_ranges(runner):
    result = run(runner, "template", "--list")
    assert result.exit_code == 0
    out = result.stdout
    assert "  weekly: Plan on Monday, build on Wednesday, test on Friday" in out
    assert "  launch-6-weeks: " in out
    assert ("Wed 14:00-17:00  Implementation: 200,000 tokens (Opus 20,000, Sonnet 170,000, "
            "Haiku 10,000), primary sonnet, est. $0.62 to $3.10") in out
    assert ("  security-review: Security Review: 40,000 tokens (Opus 30,000, Sonnet 10,000), "
            "primary opus, est. $0.18 to $0.90") in out
    assert "every budgeted token billed as input, or every one as output" in out


def test_a_price_override_in_the_config_changes_the_estimate(runner, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[prices."claude-haiku-4-5"]\ninput = 2.0\noutput = 10.0\n'
                      "cache_write_5m = 2.5\ncache_write_1h = 4.0\ncache_read = 0.2\n")
    out = run(runner, "--config", str(config), "template", "--list").stdout
    assert "Documentation: 25,000 tokens (Sonnet 5,000, Haiku 20,000), primary haiku, " \
        "est. $0.06 to $0.28" in out


def test_the_example_schedule_file(runner):
    result = run(runner, "template", "--schedule", str(ROOT / "examples" / "schedule.toml"),
                 "--start", "2027-01-04")
    assert result.exit_code == 0, result.output
    calendar = icalendar.Calendar.from_ical(result.stdout_bytes)
    summaries = sorted({str(e["SUMMARY"]) for e in calendar.walk("VEVENT")})
    assert "Claude Code: my-side-project - Deep Work" in summaries
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    occurrences = recurring_ical_events.of(calendar).between(date(2027, 1, 4), date(2027, 3, 8))
    assert len(occurrences) == 6 * 3 + 2 * 2


def bad_schedule(tmp_path: Path) -> str:
    path = tmp_path / "mine.toml"
    path.write_text('[[sessions]]\nday = "monday"\nstart = "14:00"\nend = "17:00"\n'
                    'type = "planning"\nbudget = { total = 1000, opus = 5000 }\n')
    return str(path)


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--preset", "monthly"], "calsync: --preset: unknown preset 'monthly'; choose "
                 "from launch-6-weeks, weekly", id="unknown-preset"),
    pytest.param(["--tz", "America/Springfield"], "calsync: --tz: unknown time zone "
                 "'America/Springfield'", id="unknown-zone"),
    pytest.param(["--preset", "launch-6-weeks", "--weeks", "8"], "calsync: --weeks: 8 weeks "
                 "asked for, but schedule 'launch-6-weeks' plans weeks 1 to 6", id="too-many"),
    pytest.param(["--schedule", "missing.toml"], "calsync: missing.toml: --schedule: no such "
                 "file", id="missing-schedule"),
    pytest.param(["--schedule", "BAD"], "calsync: {tmp}/mine.toml: sessions[1].budget: opus + "
                 "sonnet + haiku = 5000 tokens, above total 1000", id="shares-above-total"),
    pytest.param(["--schedule", "BAD", "--preset", "weekly"], "calsync: --schedule: give "
                 "--preset or --schedule, not both", id="both"),
    pytest.param(["--dtstamp", "soon"], "calsync: --dtstamp: 'soon' is not an ISO 8601",
                 id="bad-dtstamp"),
])
def test_bad_input_is_one_line_and_exit_code_2(runner, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    args = [bad_schedule(tmp_path) if a == "BAD" else a for a in args]
    result = runner.invoke(cli, ["template", "--project", "p", "--tz", "UTC", "--start",
                                 "2026-12-07", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message.format(tmp=tmp_path))
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_project_and_zone_are_needed_somewhere(runner):
    result = runner.invoke(cli, ["template", "--start", "2026-12-07"])
    assert result.exit_code == 2
    assert result.stderr.startswith("calsync: --project: needed")
    result = runner.invoke(cli, ["template", "--start", "2026-12-07", "--project", "p"])
    assert result.stderr.startswith("calsync: --tz: needed")


def readme_commands() -> list[str]:
    """The `calsync template` commands of the README's Templates and Importing sections."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = [part for part in text.split("\n## ")
                if part.startswith(("Templates\n", "Importing into Google Calendar"))]
    return [line for part in sections for line in part.splitlines()
            if line.startswith("calsync template")]


def test_every_template_command_in_the_readme_works(runner, tmp_path, monkeypatch):
    commands = readme_commands()
    assert len(commands) >= 6
    monkeypatch.chdir(tmp_path)
    for command in commands:
        args = shlex.split(command)[1:]
        for i, arg in enumerate(args):
            if args[i - 1] == "--schedule":
                args[i] = str(ROOT / arg)
            if args[i - 1] == "-o":  # write into tmp_path, never into the checkout
                args[i] = Path(arg).name
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, (command, result.output)
        if "examples/sessions.ics" in command:
            assert (tmp_path / "sessions.ics").read_bytes() == \
                (ROOT / "examples" / "sessions.ics").read_bytes()
