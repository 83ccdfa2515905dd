"""Weekly templates (pure): series, UIDs, cost estimates, VTIMEZONE, the .ics text, schedules."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import icalendar
import pytest
from dateutil.tz import tzical

from calsync import codec, schedule_file, weekly
from calsync.errors import TemplateError
from calsync.model import Budget
from calsync.pricing import load_prices

PRICES = load_prices()
DTSTAMP = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NEW_YORK = schedule_file.zone("America/New_York")


def series_of(preset: str = "weekly", *, start: date = date(2026, 12, 7), weeks: int = 6,
              tz: str = "America/New_York", project: str = "organized-ai-marketplace"):
    return weekly.plan_series(schedule_file.load_preset(preset), project=project, start=start,
                              weeks=weeks, tz=schedule_file.zone(tz), prices=PRICES)


def parse_schedule(text: str, path: str = "mine.toml") -> schedule_file.Schedule:
    return schedule_file.parse_schedule(text, path=path, default_name="mine",
                                        shipped_types=schedule_file.load_session_types())


def occurrences(series: weekly.Series) -> list[datetime]:
    return [series.first_start + timedelta(weeks=n) for n in range(series.count)]


# --- which sessions, when -------------------------------------------------------------------

def test_weekly_preset_is_monday_wednesday_friday_for_the_given_weeks():
    series = series_of()
    assert [(s.slot.session.name, s.first_start.strftime("%a %H:%M"), s.first_end.strftime(
        "%H:%M"), s.count) for s in series] == [
        ("Planning & Architecture", "Mon 14:00", "17:00", 6),
        ("Implementation", "Wed 14:00", "17:00", 6),
        ("Testing & Polish", "Fri 13:00", "16:00", 6),
    ]
    assert series[0].first_start == datetime(2026, 12, 7, 14, tzinfo=NEW_YORK)
    assert series[0].last_start == datetime(2027, 1, 11, 14, tzinfo=NEW_YORK)
    assert series[1].summary == "Claude Code: organized-ai-marketplace - Implementation"


def test_a_start_that_is_not_a_monday_drops_the_earlier_sessions_of_that_week():
    series = series_of(start=date(2026, 12, 9), weeks=2)  # a Wednesday
    firsts = {s.slot.session.key: (s.first_start.date(), s.count) for s in series}
    assert firsts == {
        "planning": (date(2026, 12, 14), 1),        # Monday 7 is before the start
        "implementation": (date(2026, 12, 9), 2),   # the start day itself counts
        "testing": (date(2026, 12, 11), 2),
    }
    assert max(s.last_start for s in series).date() == date(2026, 12, 18)  # still 2 weeks


def test_launch_preset_follows_the_per_session_budgets_week_by_week():
    series = series_of("launch-6-weeks", start=date(2027, 3, 1))
    week_totals: dict[int, int] = {}
    for one in series:
        for start in occurrences(one):
            week = (start.date() - date(2027, 3, 1)).days // 7 + 1
            week_totals[week] = week_totals.get(week, 0) + (one.plan.budget.total or 0)
    assert week_totals == {1: 150_000, 2: 500_000, 3: 500_000, 4: 500_000, 5: 500_000,
                           6: 200_000}
    by_name = {s.plan.session_type: s.plan for s in series if s.phase == "Polish & Launch"}
    assert by_name["Security Review"].primary_model == "opus"
    assert by_name["Security Review"].budget.total == 40_000
    assert by_name["Documentation"].primary_model == "haiku"
    assert by_name["Documentation"].budget.total == 25_000
    implementation = sorted(s.plan.budget.total for s in series
                            if s.plan.session_type == "Implementation")
    assert implementation == [150_000, 200_000]


def test_each_phase_is_its_own_series_ending_with_the_phase():
    series = series_of("launch-6-weeks", start=date(2027, 3, 1))
    mondays = [(s.phase, s.plan.session_type, s.first_start.date(), s.count) for s in series
               if s.slot.day == 0]
    assert mondays == [
        ("Foundation", "Planning", date(2027, 3, 1), 1),
        ("Core Development", "Feature Planning", date(2027, 3, 8), 4),
        ("Polish & Launch", "Bug Fixes", date(2027, 4, 5), 1),
    ]


def test_fewer_weeks_cut_the_phases_short_and_more_weeks_than_planned_is_an_error():
    assert {s.phase for s in series_of("launch-6-weeks", weeks=3)} == {
        "Foundation", "Core Development"}
    with pytest.raises(TemplateError, match=r"--weeks: 7 weeks asked for.*plans weeks 1 to 6"):
        series_of("launch-6-weeks", weeks=7)


def test_a_plan_without_any_session_is_an_error():
    with pytest.raises(TemplateError, match=r"--start: no session of 'weekly' falls between "
                       r"2026-12-12 and the end of week 1"):
        series_of(start=date(2026, 12, 12), weeks=1)  # a Saturday


# --- UIDs -----------------------------------------------------------------------------------

def test_uids_are_stable_and_unique_and_survive_a_longer_plan():
    first, again = series_of(), series_of()
    assert [s.uid for s in first] == [s.uid for s in again]
    assert len({s.uid for s in series_of("launch-6-weeks")}) == 11
    # more weeks, or another zone: the same series, so a re-import updates them
    assert [s.uid for s in series_of(weeks=10)] == [s.uid for s in first]
    assert [s.uid for s in series_of(tz="Europe/Berlin")] == [s.uid for s in first]
    # another project or another first week: other events
    assert not {s.uid for s in series_of(project="other")} & {s.uid for s in first}
    assert not {s.uid for s in series_of(start=date(2026, 12, 14))} & {s.uid for s in first}


# --- cost estimate --------------------------------------------------------------------------

@pytest.mark.parametrize(("budget", "primary", "expected"), [
    pytest.param(Budget(total=50_000, sonnet=40_000, opus=10_000), "sonnet",
                 (Decimal("0.17"), Decimal("0.85")), id="planning-sonnet-and-opus"),
    pytest.param(Budget(total=40_000, opus=30_000, sonnet=10_000), "opus",
                 (Decimal("0.18"), Decimal("0.90")), id="security-review-opus"),
    pytest.param(Budget(total=100_000), "haiku", (Decimal("0.10"), Decimal("0.50")),
                 id="unassigned-tokens-count-for-the-primary-model"),
    pytest.param(Budget(total=100_000, opus=50_000), None,
                 (Decimal("0.40"), Decimal("2.00")), id="no-primary-means-sonnet"),
])
def test_estimated_cost_is_all_input_to_all_output(budget, primary, expected):
    assert weekly.estimate_cost_usd(budget, primary, PRICES) == expected


def test_the_estimate_and_the_activities_are_in_the_plan_notes():
    planning = series_of()[0].plan
    assert "Activities: break the week's work into tasks; design the architecture and the " \
        "interfaces; have Opus review the key decisions" in planning.notes
    assert planning.notes[-1].startswith("Estimated cost: $0.17 to $0.85 (all budgeted tokens "
                                         "billed as input, or all as output; list prices of "
                                         "2026-11-01")


# --- VTIMEZONE ------------------------------------------------------------------------------

ZONES = ["America/New_York", "Europe/Berlin", "Europe/London", "Australia/Sydney",
         "Australia/Lord_Howe", "Asia/Tokyo", "Asia/Kolkata", "UTC", "America/Sao_Paulo",
         "America/Mexico_City", "Africa/Casablanca", "Pacific/Chatham"]


def _repeated(local: datetime) -> bool:
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()


@pytest.mark.parametrize("name", ZONES)
def test_vtimezone_gives_the_offsets_of_zoneinfo_around_every_change(name):
    zone = schedule_file.zone(name)
    first, last = date(2022, 2, 1), date(2022, 11, 30)  # Mexico City dropped DST in 2022
    component = weekly.build_vtimezone(zone, first, last)
    text = component.to_ical().decode()
    assert "RDATE" not in text
    parsed = tzical(io.StringIO(text)).get(name)
    instants = [datetime(2021, 1, 1, tzinfo=UTC) + timedelta(hours=h)
                for h in range(0, 3 * 366 * 24, 7)]
    # dateutil cannot tell the two passes of a repeated wall-clock hour apart: skip those
    instants = [at for at in instants if not _repeated(at.astimezone(zone))]
    mismatches = [(at, at.astimezone(parsed).utcoffset(), at.astimezone(zone).utcoffset())
                  for at in instants
                  if at.astimezone(parsed).utcoffset() != at.astimezone(zone).utcoffset()]
    assert mismatches == []


def test_vtimezone_for_new_york_is_two_yearly_rules():
    text = weekly.build_vtimezone(NEW_YORK, date(2026, 12, 7), date(2027, 1, 15)).to_ical()
    assert b"RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3" in text
    assert b"RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11" in text
    assert text.count(b"BEGIN:DAYLIGHT") == text.count(b"BEGIN:STANDARD") == 1


# --- the .ics text --------------------------------------------------------------------------

def test_calendar_for_import_has_the_header_and_every_event_property():
    text = weekly.render_calendar(series_of(), dtstamp=DTSTAMP)
    calendar = icalendar.Calendar.from_ical(text)
    assert (calendar["VERSION"], calendar["CALSCALE"], calendar["METHOD"]) == (
        "2.0", "GREGORIAN", "PUBLISH")
    assert str(calendar["PRODID"]) == weekly.PRODID
    assert "X-WR-CALNAME" not in calendar
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["America/New_York"]
    events = calendar.walk("VEVENT")
    assert len(events) == 3
    for event in events:
        assert event.decoded("DTSTAMP") == DTSTAMP
        assert event["SEQUENCE"] == 0
        assert event["DTSTART"].params["TZID"] == event["DTEND"].params["TZID"] == \
            "America/New_York"
        assert "ORGANIZER" not in event and "ATTENDEE" not in event
        rule = event["RRULE"]
        assert rule["FREQ"] == ["WEEKLY"] and len(rule["BYDAY"]) == 1
        assert rule["UNTIL"][0].utcoffset() == timedelta(0)
    assert "RRULE:FREQ=WEEKLY;UNTIL=20270111T190000Z;BYDAY=MO\r\n" in text


def test_every_event_carries_its_plan_for_calsync_to_read_back():
    series = series_of("launch-6-weeks")
    calendar = icalendar.Calendar.from_ical(weekly.render_calendar(series, dtstamp=DTSTAMP))
    read = {str(e["UID"]): codec.read_plan(e) for e in calendar.walk("VEVENT")}
    assert read == {s.uid: s.plan for s in series}
    assert all(e["SUMMARY"].startswith("Claude Code: organized-ai-marketplace - ")
               for e in calendar.walk("VEVENT"))


def test_two_alarms_before_the_start_and_before_the_end():
    event = icalendar.Calendar.from_ical(
        weekly.render_calendar(series_of(), dtstamp=DTSTAMP)).walk("VEVENT")[1]
    start, end = event.walk("VALARM")
    assert start["ACTION"] == end["ACTION"] == "DISPLAY"
    assert start.decoded("TRIGGER") == timedelta(minutes=-15)
    assert "RELATED" not in start["TRIGGER"].params
    assert str(start["DESCRIPTION"]) == (
        "Claude Code: organized-ai-marketplace - Implementation starts in 15 minutes. Budget: "
        "100,000 tokens (Opus 10,000, Sonnet 85,000, Haiku 5,000). Primary model: sonnet. "
        "Used so far today: calsync usage --by day --project organized-ai-marketplace")
    assert end.decoded("TRIGGER") == timedelta(minutes=-30)
    assert end["TRIGGER"].params["RELATED"] == "END"
    assert "prepare the session summary" in str(end["DESCRIPTION"])


def test_lines_end_in_crlf_and_fold_at_75_octets():
    text = weekly.render_calendar(series_of("launch-6-weeks"), dtstamp=DTSTAMP,
                                  calendar_name="Claude Code – Sessions ✅")
    data = text.encode("utf-8")
    assert data.endswith(b"\r\n")
    lines = data.split(b"\r\n")[:-1]
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines)  # long DESCRIPTIONs were folded


def test_method_and_calendar_name_only_when_asked():
    plain = weekly.render_calendar(series_of(), dtstamp=DTSTAMP, method=False)
    named = weekly.render_calendar(series_of(), dtstamp=DTSTAMP, calendar_name="Sessions")
    assert "METHOD" not in plain
    assert "X-WR-CALNAME:Sessions\r\n" in named and "METHOD:PUBLISH\r\n" in named


def test_objects_for_a_server_hold_one_series_and_its_time_zone_without_method():
    series = series_of()
    objects = weekly.render_objects(series, dtstamp=DTSTAMP)
    assert [uid for uid, _ in objects] == [s.uid for s in series]
    for uid, text in objects:
        calendar = icalendar.Calendar.from_ical(text)
        assert "METHOD" not in calendar
        assert [str(e["UID"]) for e in calendar.walk("VEVENT")] == [uid]
        assert len(calendar.walk("VTIMEZONE")) == 1


# --- schedule files -------------------------------------------------------------------------

SLOT = '[[sessions]]\nday = "monday"\nstart = "14:00"\nend = "17:00"\ntype = "planning"\n'


@pytest.mark.parametrize(("text", "message"), [
    pytest.param(SLOT.replace("monday", "funday"),
                 "mine.toml: sessions[1].day: unknown day 'funday'", id="unknown-day"),
    pytest.param(SLOT.replace('"17:00"', '"13:00"'),
                 "mine.toml: sessions[1].end: 13:00 is not after start 14:00", id="end-first"),
    pytest.param(SLOT.replace('"14:00"', "1400"),
                 "mine.toml: sessions[1].start: 1400 is not a time", id="start-not-a-time"),
    pytest.param(SLOT + "budget = { total = 10_000, opus = 8_000, haiku = 5_000 }\n",
                 "mine.toml: sessions[1].budget: opus + sonnet + haiku = 13000 tokens, above "
                 "total 10000", id="shares-above-total"),
    pytest.param(SLOT + 'budget = { total = "lots" }\n',
                 "mine.toml: sessions[1].budget.total: not a whole number: 'lots'",
                 id="budget-not-a-number"),
    pytest.param('timezone = "Mars/Olympus"\n' + SLOT,
                 "mine.toml: timezone: unknown time zone 'Mars/Olympus'", id="unknown-zone"),
    pytest.param('weeks = "six"\n' + SLOT, "mine.toml: weeks: not a whole number: 'six'",
                 id="weeks-wrong-type"),
    pytest.param(SLOT.replace("planning", "napping"),
                 "mine.toml: sessions[1].type: unknown session type 'napping'",
                 id="unknown-type"),
    pytest.param(SLOT + 'colour = "red"\n', "mine.toml: sessions[1].colour: unknown key",
                 id="unknown-key"),
    pytest.param('[[phases]]\nweeks = [3, 2]\n' + SLOT.replace("[[sessions]]",
                 "[[phases.sessions]]"), "mine.toml: phases[1].weeks: [3, 2] is not a week",
                 id="weeks-backwards"),
    pytest.param("name = 'x'\n", "mine.toml: give either [[sessions]]", id="no-sessions"),
    pytest.param("[[sessions]\n", "mine.toml: not valid TOML", id="not-toml"),
])
def test_a_broken_schedule_names_the_file_and_the_key(text, message):
    with pytest.raises(TemplateError) as caught:
        parse_schedule(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_schedule_slot_overrides_its_type_and_may_define_new_types():
    schedule = parse_schedule(
        'name = "nights"\n[types.late]\nname = "Late Night"\nprimary_model = "haiku"\n'
        'budget = { haiku = 20_000 }\n'
        '[[phases]]\nname = "A"\nweeks = 2\n'
        '[[phases.sessions]]\nday = "Tue"\nstart = "22:00"\nend = "23:30"\ntype = "late"\n'
        '[[phases.sessions]]\nday = "thu"\nstart = 20:00:00\nend = 21:00:00\n'
        'type = "implementation"\ngoals = ["Only this"]\nbudget = { total = 60_000 }\n')
    assert schedule.name == "nights"
    (phase,) = schedule.phases
    assert (phase.first_week, phase.last_week) == (2, 2)
    late, implementation = phase.slots
    assert (late.day, late.session.name, late.session.budget) == (
        1, "Late Night", Budget(total=20_000, haiku=20_000))
    assert implementation.session.goals == ("Only this",)
    assert implementation.session.budget == Budget(total=60_000)  # a budget replaces, whole
    assert implementation.session.deliverables  # the rest comes from the shipped type


def test_the_example_schedule_file_loads():
    path = Path(__file__).parents[2] / "examples" / "schedule.toml"
    schedule = schedule_file.load_schedule_file(path)
    assert (schedule.project, schedule.timezone, schedule.weeks) == (
        "my-side-project", "Europe/Berlin", 8)
    deep = schedule.phases[0].slots[2].session
    assert (deep.name, deep.framework, deep.cost_budget_usd) == (
        "Deep Work", "Hybrid", Decimal("5.00"))
