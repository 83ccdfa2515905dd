"""Session occurrences from calendar objects, bad events reported (calsync.calendar_reader)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from calsync.calendar_reader import Reading, parse_occurrences
from calsync.model import CalendarObject

CLIENTS = Path(__file__).parent.parent / "data" / "clients"
NEW_YORK = ZoneInfo("America/New_York")

PLAN = (
    "X-CLAUDE-PROJECT:calsync",
    "X-CLAUDE-SESSION-TYPE:implementation",
    "X-CLAUDE-TOKEN-BUDGET-TOTAL:100000",
    "X-CLAUDE-TOKEN-BUDGET-SONNET:85000",
)


def ics(*events: str, head: str = "") -> str:
    body = "".join(e.strip() + "\n" for e in events)
    return (f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{head}{body}END:VCALENDAR\n"
            .replace("\n", "\r\n"))


def event(uid: str, *lines: str, summary: str = "Session") -> str:
    inner = "\n".join(lines)
    return (f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20261201T000000Z\nSUMMARY:{summary}\n"
            f"{inner}\nEND:VEVENT")


def read(*texts: str, first: date = date(2026, 12, 7), last: date = date(2026, 12, 31),
         tz: ZoneInfo = NEW_YORK, location: str = "work.ics") -> Reading:
    start = datetime.combine(first, datetime.min.time(), tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    objects = [CalendarObject(f"obj-{i}", None, text) for i, text in enumerate(texts)]
    return parse_occurrences(objects, start, end, tz, location=location)


def problems(reading: Reading) -> list[str]:
    return [str(p) for p in reading.problems]


# --- what real clients export ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    pytest.param("google.ics", [
        ("12-07 14:00", "Planning & Architecture", 50_000, "0/2"),
        ("12-09 14:00", "Implementation", 100_000, "1/2"),
        ("12-11 00:00", "Security Review", 40_000, "0/1"),
        ("12-22 15:00", "Planning & Architecture", 50_000, "1/2"),  # the override's own goals
        ("12-28 14:00", "Planning & Architecture", 50_000, "0/2"),
    ], id="google-plan-block-only-html-after-web-edit"),
    pytest.param("apple-icloud.ics", [
        ("12-09 08:00", "implementation", 100_000, "0/2"),
        ("12-10 09:00", "testing", 75_000, "0/0"),
        ("12-11 04:00", "security-review", 40_000, "0/0"),
        ("12-16 10:00", "implementation", 120_000, "1/2"),  # the person raised this one
        ("12-18 00:00", "documentation", 25_000, "0/0"),
        ("12-23 08:00", "implementation", 100_000, "0/2"),
    ], id="apple-properties-kept"),
    pytest.param("outlook.ics", [
        ("12-09 14:00", "Implementation", 100_000, "0/2"),
        ("12-14 03:00", "Planning", 50_000, "0/0"),
        ("12-17 10:00", "Implementation", 100_000, "0/2"),
        ("12-18 00:00", "Security Review", 40_000, "0/0"),
    ], id="outlook-plan-block-and-x-alt-desc"),
    pytest.param("thunderbird.ics", [
        ("12-11 08:00", "testing", 75_000, "1/2"),
        ("12-14 09:00", "planning", 50_000, "0/0"),
        ("12-15 09:00", "security-review", 40_000, "0/0"),
        ("12-16 08:00", "testing", 75_000, "1/2"),
        ("12-17 00:00", "documentation", 25_000, "0/0"),
        ("12-18 00:00", "documentation", 25_000, "0/0"),
        ("12-18 08:00", "testing", 75_000, "1/2"),
        ("12-19 00:00", "documentation", 25_000, "0/0"),
    ], id="thunderbird-properties-kept"),
])
def test_client_exports_list_only_their_sessions_with_plans(name, expected):
    reading = read((CLIENTS / name).read_text(encoding="utf-8"))
    assert problems(reading) == []
    assert [(f"{o.start:%m-%d %H:%M}", o.plan.session_type, o.plan.budget.total,
             f"{sum(g.done for g in o.plan.goals)}/{len(o.plan.goals)}")
            for o in reading.occurrences] == expected
    assert {o.plan.project for o in reading.occurrences} == {"organized-ai-marketplace"}


def test_a_cancelled_session_is_listed_as_cancelled():
    reading = read((CLIENTS / "apple-icloud.ics").read_text(encoding="utf-8"))
    assert [o.plan.session_type for o in reading.occurrences if o.cancelled] == [
        "security-review"]


def test_occurrences_from_several_objects_come_out_in_time_order():
    reading = read(
        ics(event("late", "DTSTART:20261210T150000Z", "DTEND:20261210T160000Z", *PLAN)),
        ics(event("early", "DTSTART:20261208T150000Z", "DTEND:20261208T160000Z", *PLAN)),
    )
    assert [(o.uid, o.href) for o in reading.occurrences] == [
        ("early", "obj-1"), ("late", "obj-0")]


# --- overrides and their plans -----------------------------------------------------------------

SERIES = event("s", "DTSTART:20261214T140000Z", "DTEND:20261214T150000Z",
               "RRULE:FREQ=DAILY;COUNT=3", *PLAN, summary="Build")


@pytest.mark.parametrize(("override_lines", "budget"), [
    pytest.param((), 100_000, id="bare-override-takes-the-series-plan"),
    pytest.param(("X-CLAUDE-STATUS:completed", "X-CLAUDE-ACTUAL-TOKENS-TOTAL:5000"), 100_000,
                 id="override-with-only-actuals-takes-the-series-plan"),
    pytest.param(("X-CLAUDE-TOKEN-BUDGET-TOTAL:150000",), 150_000,
                 id="override-with-its-own-plan-keeps-it"),
])
def test_an_override_without_a_plan_of_its_own_keeps_the_series_plan(override_lines, budget):
    moved = event("s", "RECURRENCE-ID:20261215T140000Z", "DTSTART:20261215T180000Z",
                  "DTEND:20261215T190000Z", *override_lines, summary="Build (moved)")
    reading = read(ics(SERIES, moved))
    assert problems(reading) == []
    assert [(o.summary, o.plan.budget.total) for o in reading.occurrences] == [
        ("Build", 100_000), ("Build (moved)", budget), ("Build", 100_000)]
    assert reading.occurrences[1].recurrence_id == datetime(2026, 12, 15, 14, 0,
                                                            tzinfo=ZoneInfo("UTC"))


def test_a_series_that_is_not_a_session_stays_out_even_with_a_planned_override():
    plain = event("p", "DTSTART:20261214T140000Z", "DTEND:20261214T150000Z",
                  "RRULE:FREQ=DAILY;COUNT=3", summary="Standup")
    planned = event("p", "RECURRENCE-ID:20261215T140000Z", "DTSTART:20261215T140000Z",
                    "DTEND:20261215T150000Z", *PLAN, summary="Standup, then pairing")
    reading = read(ics(plain, planned))
    assert [o.summary for o in reading.occurrences] == ["Standup, then pairing"]


# --- a bad event is reported and the rest are listed --------------------------------------------

GOOD = event("good", "DTSTART:20261209T150000Z", "DTEND:20261209T160000Z", *PLAN)


@pytest.mark.parametrize(("bad", "expected"), [
    pytest.param(event("b1", "DTSTART:20261210T150000Z", "DTEND:20261210T160000Z",
                       "X-CLAUDE-TOKEN-BUDGET-TOTAL:lots"),
                 "work.ics: UID b1: X-CLAUDE-TOKEN-BUDGET-TOTAL: ", id="budget-not-a-number"),
    pytest.param(event("b2", "DTSTART:20261210T150000Z", "DTEND:20261210T160000Z",
                       "X-CLAUDE-TOKEN-BUDGET-TOTAL:50000", "X-CLAUDE-TOKEN-BUDGET-OPUS:40000",
                       "X-CLAUDE-TOKEN-BUDGET-SONNET:40000"),
                 "work.ics: UID b2: X-CLAUDE-TOKEN-BUDGET-TOTAL: the per-model budgets add up",
                 id="shares-above-total"),
    pytest.param(event("b3", "DTSTART;TZID=Pacific/Atlantis:20261210T150000",
                       "DTEND;TZID=Pacific/Atlantis:20261210T160000", *PLAN),
                 "work.ics: UID b3: DTSTART: unknown time zone 'Pacific/Atlantis'",
                 id="unknown-time-zone"),
    pytest.param(event("b4", "DTSTART:20261210T150000Z", "RRULE:FREQ=FORTNIGHTLY", *PLAN),
                 "work.ics: UID b4: cannot expand", id="broken-rule"),
])
def test_a_bad_event_is_reported_and_the_others_are_still_listed(bad, expected):
    reading = read(ics(GOOD, bad))
    [problem] = problems(reading)
    assert problem.startswith(expected)
    assert "\n" not in problem
    assert [o.uid for o in reading.occurrences] == ["good"]


def test_a_broken_series_plan_is_reported_once_not_per_occurrence():
    series = event("daily", "DTSTART:20261208T150000Z", "DTEND:20261208T160000Z",
                   "RRULE:FREQ=DAILY;COUNT=10", "X-CLAUDE-TOKEN-BUDGET-TOTAL:many")
    reading = read(ics(series, GOOD))
    assert len(reading.problems) == 1
    assert [o.uid for o in reading.occurrences] == ["good"]


def test_events_that_are_not_sessions_are_never_reported():
    dentist = event("dentist", "DTSTART;TZID=Mars/Olympus Mons:20261210T150000",
                    "DTEND;TZID=Mars/Olympus Mons:20261210T160000", summary="Dentist")
    reading = read(ics(GOOD, dentist))
    assert problems(reading) == []
    assert [o.uid for o in reading.occurrences] == ["good"]


def test_an_object_that_is_not_icalendar_is_reported_with_its_url_and_others_listed():
    objects = [CalendarObject("/cal/work/broken.ics", '"1"', "BEGIN:VCALENDAR\r\nnonsense"),
               CalendarObject("/cal/work/good.ics", '"2"', ics(GOOD))]
    start = datetime(2026, 12, 7, tzinfo=NEW_YORK)
    reading = parse_occurrences(objects, start, start + timedelta(days=7), NEW_YORK,
                                location="https://dav.example.com/cal/work/")
    [problem] = problems(reading)
    assert problem.startswith("https://dav.example.com/cal/work/broken.ics: not an iCalendar")
    assert [o.uid for o in reading.occurrences] == ["good"]


def test_an_unknown_calendar_time_zone_is_reported_once_and_times_read_as_written():
    head = "X-WR-TIMEZONE:Middle Earth/Shire\n"
    text = ics(GOOD, event("two", "DTSTART:20261210T150000Z", "DTEND:20261210T160000Z",
                           *PLAN), head=head)
    reading = read(text, text.replace("UID:", "UID:copy-"))
    assert problems(reading) == [
        "work.ics: X-WR-TIMEZONE: unknown time zone 'Middle Earth/Shire'; times are read as "
        "written"]
    assert [f"{o.start:%d %H:%M}" for o in reading.occurrences] == [
        "09 10:00", "09 10:00", "10 10:00", "10 10:00"]


def test_a_windows_calendar_time_zone_is_understood():
    floating_utc = event("w", "DTSTART:20261209T150000Z", "DTEND:20261209T160000Z",
                         "RRULE:FREQ=DAILY;COUNT=2", *PLAN)
    reading = read(ics(floating_utc, head="X-WR-TIMEZONE:Eastern Standard Time\n"))
    assert problems(reading) == []
    assert [f"{o.start:%d %H:%M}" for o in reading.occurrences] == ["09 10:00", "10 10:00"]
