"""Occurrences in a window, and the override of one occurrence (calsync.recurrence)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from calsync.errors import CalendarParseError
from calsync.recurrence import (
    find_or_create_override,
    occurrences_between,
    override_in,
    parse_calendar,
)

CLIENTS = Path(__file__).parent.parent / "data" / "clients"
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")

EASTERN_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Eastern Standard Time
BEGIN:STANDARD
DTSTART:16011104T020000
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010311T020000
RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE
"""


def ics(*components: str, head: str = "") -> str:
    body = "".join(c.strip() + "\n" for c in components)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{head}{body}END:VCALENDAR\n"
    return text.replace("\n", "\r\n")


def event(uid: str, *lines: str, summary: str = "Session") -> str:
    inner = "\n".join(lines)
    return (f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20261201T000000Z\nSUMMARY:{summary}\n"
            f"{inner}\nEND:VEVENT")


def day_window(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in tz, like `calsync agenda --from --to`."""
    return (datetime.combine(first, datetime.min.time(), tz),
            datetime.combine(last + timedelta(days=1), datetime.min.time(), tz))


def listing(text: str, first: date, last: date, tz: ZoneInfo) -> list[str]:
    start, end = day_window(first, last, tz)
    found = occurrences_between(parse_calendar(text), start, end, tz)
    return [f"{o.start.isoformat(timespec='minutes')} {o.event['SUMMARY']}" for o in found]


# --- what real clients export ---------------------------------------------------------------

CLIENT_LISTINGS = [
    pytest.param("google.ics", NEW_YORK, [
        "2026-12-07T14:00-05:00 Claude Code: organized-ai-marketplace - Planning & Architecture",
        "2026-12-09T14:00-05:00 Claude Code: organized-ai-marketplace - Implementation",
        "2026-12-10T10:30-05:00 Dentist",
        "2026-12-11T00:00-05:00 Claude Code: organized-ai-marketplace - Security Review",
        # 14 Dec is in EXDATE; 21 Dec was moved to Tuesday 22 Dec 15:00 by an override
        "2026-12-22T15:00-05:00 Claude Code: organized-ai-marketplace - Planning & Architecture",
        "2026-12-28T14:00-05:00 Claude Code: organized-ai-marketplace - Planning & Architecture",
    ], id="google-utc-singles-html-exdate-override"),
    pytest.param("apple-icloud.ics", BERLIN, [
        "2026-12-09T14:00+01:00 Claude Code: organized-ai-marketplace - Implementation",
        # floating: 09:00 wherever the reader is, although the file names X-WR-TIMEZONE
        "2026-12-10T09:00+01:00 Claude Code: organized-ai-marketplace - Testing & Polish",
        "2026-12-11T10:00+01:00 Claude Code: organized-ai-marketplace - Security Review",
        "2026-12-14T12:30+01:00 Lunch with Sam",
        "2026-12-16T16:00+01:00 Claude Code: organized-ai-marketplace - Implementation (moved)",
        "2026-12-18T00:00+01:00 Claude Code: organized-ai-marketplace - Documentation",
        "2026-12-23T14:00+01:00 Claude Code: organized-ai-marketplace - Implementation",
        # 30 Dec is in EXDATE
    ], id="apple-floating-allday-cancelled-override"),
    pytest.param("outlook.ics", NEW_YORK, [
        "2026-12-09T14:00-05:00 Claude Code: organized-ai-marketplace - Implementation",
        "2026-12-14T03:00-05:00 Claude Code: organized-ai-marketplace - Planning (Berlin office)",
        "2026-12-15T11:00-05:00 Team sync",
        # 16 Dec moved to Thursday; 23 and 30 Dec in one EXDATE line
        "2026-12-17T10:00-05:00 Claude Code: organized-ai-marketplace - Implementation",
        "2026-12-18T00:00-05:00 Claude Code: organized-ai-marketplace - Security Review",
    ], id="outlook-windows-zone-names-exdate-list"),
    pytest.param("thunderbird.ics", NEW_YORK, [
        "2026-12-11T08:00-05:00 Claude Code: organized-ai-marketplace - Testing & Polish",
        "2026-12-14T09:00-05:00 Claude Code: organized-ai-marketplace - Planning",
        "2026-12-15T09:00-05:00 Claude Code: organized-ai-marketplace - Security Review",
        "2026-12-16T03:30-05:00 Dentist",
        "2026-12-16T08:00-05:00 Claude Code: organized-ai-marketplace - Testing & Polish",
        "2026-12-17T00:00-05:00 Claude Code: organized-ai-marketplace - Documentation",
        "2026-12-18T00:00-05:00 Claude Code: organized-ai-marketplace - Documentation",
        "2026-12-18T08:00-05:00 Claude Code: organized-ai-marketplace - Testing & Polish",
        "2026-12-19T00:00-05:00 Claude Code: organized-ai-marketplace - Documentation",
        # 25 Dec is an EXDATE in UTC; the RDATE added Wednesday 16 Dec
    ], id="thunderbird-rdate-utc-exdate-date-until-mozilla-tzid"),
]


@pytest.mark.parametrize(("name", "tz", "expected"), CLIENT_LISTINGS)
def test_client_exports_expand_as_their_apps_show_them(name, tz, expected):
    text = (CLIENTS / name).read_text(encoding="utf-8")
    assert listing(text, date(2026, 12, 7), date(2026, 12, 31), tz) == expected


def test_an_override_reports_the_original_start_as_its_recurrence_id():
    text = (CLIENTS / "outlook.ics").read_text(encoding="utf-8")
    start, end = day_window(date(2026, 12, 17), date(2026, 12, 17), NEW_YORK)
    [moved] = [o for o in occurrences_between(parse_calendar(text), start, end, NEW_YORK)
               if o.recurrence_id is not None]
    assert moved.recurrence_id == datetime(2026, 12, 16, 14, 0, tzinfo=NEW_YORK)
    assert moved.override is not None and moved.master is not None


# --- times: floating, all-day, zones ----------------------------------------------------------


@pytest.mark.parametrize(("tz", "expected_start"), [
    pytest.param(ZoneInfo("Asia/Tokyo"), "2026-12-14T09:00:00+09:00", id="tokyo"),
    pytest.param(ZoneInfo("America/Los_Angeles"), "2026-12-14T09:00:00-08:00", id="los-angeles"),
])
def test_floating_times_are_placed_in_the_zone_given(tz, expected_start):
    text = ics(event("f", "DTSTART:20261214T090000", "DTEND:20261214T100000"))
    start, end = day_window(date(2026, 12, 14), date(2026, 12, 14), tz)
    [found] = occurrences_between(parse_calendar(text), start, end, tz)
    assert found.start.isoformat() == expected_start
    assert found.recurrence_id is None


def test_a_floating_series_keeps_its_recurrence_id_floating():
    text = ics(event("fs", "DTSTART:20261214T090000", "DTEND:20261214T100000",
                     "RRULE:FREQ=DAILY;COUNT=3"))
    start, end = day_window(date(2026, 12, 15), date(2026, 12, 15), BERLIN)
    [found] = occurrences_between(parse_calendar(text), start, end, BERLIN)
    assert found.recurrence_id == datetime(2026, 12, 15, 9, 0)  # as the file writes it


def test_an_all_day_series_is_placed_at_midnight_and_keeps_date_recurrence_ids():
    text = ics(event("ad", "DTSTART;VALUE=DATE:20261214", "RRULE:FREQ=DAILY;UNTIL=20261216",
                     "EXDATE;VALUE=DATE:20261215"))
    start, end = day_window(date(2026, 12, 1), date(2026, 12, 31), NEW_YORK)
    found = occurrences_between(parse_calendar(text), start, end, NEW_YORK)
    assert [(o.start.isoformat(), o.end.isoformat(), o.recurrence_id, o.all_day)
            for o in found] == [
        ("2026-12-14T00:00:00-05:00", "2026-12-15T00:00:00-05:00", date(2026, 12, 14), True),
        ("2026-12-16T00:00:00-05:00", "2026-12-17T00:00:00-05:00", date(2026, 12, 16), True),
    ]


@pytest.mark.parametrize(("tzid", "vtimezone"), [
    pytest.param("Eastern Standard Time", "", id="windows-name-without-vtimezone"),
    pytest.param("Eastern Standard Time", EASTERN_VTIMEZONE, id="windows-name-with-vtimezone"),
    pytest.param('"Eastern Standard Time"', "", id="quoted-windows-name"),
    pytest.param("/mozilla.org/20050126_1/America/New_York", "", id="old-thunderbird-tzid"),
])
def test_time_zone_names_clients_write_resolve_to_the_right_instant(tzid, vtimezone):
    text = ics(event("z", f"DTSTART;TZID={tzid}:20261214T140000",
                     f"DTEND;TZID={tzid}:20261214T150000"), head=vtimezone)
    start, end = day_window(date(2026, 12, 14), date(2026, 12, 14), BERLIN)
    [found] = occurrences_between(parse_calendar(text), start, end, BERLIN)
    assert found.start.isoformat() == "2026-12-14T20:00:00+01:00"


@pytest.mark.parametrize(("line", "prop", "tzid"), [
    pytest.param("DTSTART;TZID=Atlantis/Lost City:20261214T140000", "DTSTART",
                 "Atlantis/Lost City", id="dtstart"),
    pytest.param("EXDATE;TZID=Mars Standard Time:20261215T140000", "EXDATE",
                 "Mars Standard Time", id="exdate"),
])
def test_an_unknown_time_zone_names_the_uid_property_and_zone(line, prop, tzid):
    lines = [line] if prop == "DTSTART" else [
        "DTSTART;TZID=Europe/Berlin:20261214T140000", "RRULE:FREQ=DAILY;COUNT=3", line]
    text = ics(event("lost-1", *lines))
    start, end = day_window(date(2026, 12, 14), date(2026, 12, 20), BERLIN)
    with pytest.raises(CalendarParseError) as caught:
        occurrences_between(parse_calendar(text), start, end, BERLIN, path="work.ics")
    assert str(caught.value).startswith(f"work.ics: UID lost-1: {prop}: unknown time zone")
    assert repr(tzid) in str(caught.value)


def test_a_rule_that_cannot_be_expanded_names_the_uid():
    text = ics(event("bad-rule", "DTSTART:20261214T140000Z", "RRULE:FREQ=SOMETIMES"))
    start, end = day_window(date(2026, 12, 14), date(2026, 12, 20), BERLIN)
    with pytest.raises(CalendarParseError, match=r"^work.ics: UID bad-rule: cannot expand"):
        occurrences_between(parse_calendar(text), start, end, BERLIN, path="work.ics")


@pytest.mark.parametrize("text", [
    pytest.param("this is not a calendar\n", id="prose"),
    pytest.param("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n", id="truncated"),
])
def test_text_that_is_not_icalendar_names_the_file(text):
    with pytest.raises(CalendarParseError, match=r"^broken.ics: "):
        parse_calendar(text, path="broken.ics")


@pytest.mark.parametrize(("dtstart", "dtend", "listed"), [
    pytest.param("20261213T230000Z", "20261214T000000Z", False, id="ends-as-window-starts"),
    pytest.param("20261213T230000Z", "20261214T000100Z", True, id="overlaps-the-start"),
    pytest.param("20261215T000000Z", "20261215T010000Z", False, id="starts-as-window-ends"),
    pytest.param("20261214T000000Z", "20261214T000000Z", True, id="zero-length-at-start"),
])
def test_the_window_holds_what_overlaps_it(dtstart, dtend, listed):
    text = ics(event("w", f"DTSTART:{dtstart}", f"DTEND:{dtend}"))
    utc = ZoneInfo("UTC")
    start, end = day_window(date(2026, 12, 14), date(2026, 12, 14), utc)
    assert bool(occurrences_between(parse_calendar(text), start, end, utc)) is listed


def test_a_cancelled_override_cancels_only_its_occurrence():
    text = ics(
        event("c", "DTSTART:20261214T140000Z", "DTEND:20261214T150000Z",
              "RRULE:FREQ=DAILY;COUNT=3"),
        event("c", "RECURRENCE-ID:20261215T140000Z", "DTSTART:20261215T140000Z",
              "DTEND:20261215T150000Z", "STATUS:CANCELLED"),
    )
    utc = ZoneInfo("UTC")
    start, end = day_window(date(2026, 12, 14), date(2026, 12, 16), utc)
    found = occurrences_between(parse_calendar(text), start, end, utc)
    assert [o.cancelled for o in found] == [False, True, False]


# --- the override of one occurrence ------------------------------------------------------------


def _outlook() -> Calendar:
    return parse_calendar((CLIENTS / "outlook.ics").read_text(encoding="utf-8"))


OUTLOOK_SERIES = ("040000008200E00074C5B7101A82E00800000000C0A7A3D1E75ADB010000000000000000"
                  "10000000F3B2A1C4D5E6F708192A3B4C5D6E7F80")


def test_a_new_override_copies_the_master_with_that_occurrences_times():
    calendar = _outlook()
    before = calendar.to_ical()
    rid = datetime(2026, 12, 9, 14, 0, tzinfo=NEW_YORK)
    result, override = find_or_create_override(calendar, OUTLOOK_SERIES, rid)
    assert calendar.to_ical() == before  # the input is left as it was
    text = override.to_ical().decode()
    assert "RECURRENCE-ID;TZID=Eastern Standard Time:20261209T140000" in text
    assert "DTSTART;TZID=Eastern Standard Time:20261209T140000" in text
    assert "DTEND;TZID=Eastern Standard Time:20261209T170000" in text
    for dropped in ("RRULE", "EXDATE", "RDATE"):
        assert f"\r\n{dropped}" not in text
    for kept in ("X-MICROSOFT-CDO-BUSYSTATUS:BUSY", "BEGIN:VALARM", "X-ALT-DESC",
                 "SUMMARY;LANGUAGE=en-us:Claude Code"):
        assert kept in text
    events = [c for c in result.subcomponents if c.name == "VEVENT"]
    assert [str(e["UID"]) == OUTLOOK_SERIES for e in events[:3]] == [True, True, True]
    assert events[2] is override  # right after the series' other VEVENTs


def test_an_existing_override_is_returned_with_the_persons_edits():
    rid = datetime(2026, 12, 16, 19, 0, tzinfo=ZoneInfo("UTC"))  # the same instant, in UTC
    result, override = find_or_create_override(_outlook(), OUTLOOK_SERIES, rid)
    assert override["DTSTART"].dt.isoformat() == "2026-12-17T10:00:00-05:00"
    assert len([c for c in result.subcomponents if c.name == "VEVENT"]) == 5


@pytest.mark.parametrize(("name", "tz"), [
    pytest.param("google.ics", NEW_YORK, id="google"),
    pytest.param("apple-icloud.ics", BERLIN, id="apple"),
    pytest.param("outlook.ics", NEW_YORK, id="outlook"),
    pytest.param("thunderbird.ics", NEW_YORK, id="thunderbird"),
])
def test_creating_overrides_never_moves_an_occurrence(name, tz):
    """Writing an override for each occurrence leaves what a calendar app shows unchanged."""
    calendar = parse_calendar((CLIENTS / name).read_text(encoding="utf-8"))
    start, end = day_window(date(2026, 12, 7), date(2026, 12, 31), tz)

    def shown(cal: Calendar) -> list[tuple[str, str, str]]:
        again = parse_calendar(cal.to_ical().decode())  # as a server would store it
        return [(o.uid, o.start.isoformat(), o.end.isoformat())
                for o in occurrences_between(again, start, end, tz)]

    expected = shown(calendar)
    series = [o for o in occurrences_between(calendar, start, end, tz) if o.recurrence_id]
    assert series, "each client file has a recurring series"
    for occurrence in series:
        assert occurrence.recurrence_id is not None
        calendar, _ = find_or_create_override(calendar, occurrence.uid, occurrence.recurrence_id)
    assert shown(calendar) == expected
    overrides = [c for c in calendar.walk("VEVENT") if "RECURRENCE-ID" in c]
    assert len(overrides) == len(series)


@pytest.mark.parametrize("name", ["google.ics", "apple-icloud.ics", "outlook.ics",
                                  "thunderbird.ics"])
def test_an_override_made_from_known_times_equals_one_made_by_expanding_the_series(name):
    """The planner passes the occurrence's times it already has; the result is the same."""
    tz = ZoneInfo("UTC")  # times given in another zone than the series' own
    start, end = day_window(date(2026, 10, 20), date(2027, 4, 10), tz)  # across DST
    text = (CLIENTS / name).read_text(encoding="utf-8")
    expanded, known = parse_calendar(text), parse_calendar(text)
    series = [o for o in occurrences_between(expanded, start, end, tz) if o.recurrence_id]
    assert len(series) > 3, "each client file has a recurring series"
    for occurrence in series:
        assert occurrence.recurrence_id is not None
        override_in(expanded, occurrence.uid, occurrence.recurrence_id)
        override_in(known, occurrence.uid, occurrence.recurrence_id,
                    at=(occurrence.start, occurrence.end))
    assert known.to_ical() == expanded.to_ical()


def test_an_all_day_override_gets_a_date_recurrence_id():
    text = ics(event("ad", "DTSTART;VALUE=DATE:20261214", "DTEND;VALUE=DATE:20261215",
                     "RRULE:FREQ=DAILY;COUNT=3"))
    _, override = find_or_create_override(parse_calendar(text), "ad", date(2026, 12, 15))
    text = override.to_ical().decode()
    assert "RECURRENCE-ID;VALUE=DATE:20261215" in text
    assert "DTEND;VALUE=DATE:20261216" in text


def test_a_master_with_a_duration_gives_an_override_with_that_duration():
    text = ics(event("d", "DTSTART:20261214T140000Z", "DURATION:PT90M",
                     "RRULE:FREQ=DAILY;COUNT=3"))
    _, override = find_or_create_override(
        parse_calendar(text), "d", datetime(2026, 12, 16, 14, 0, tzinfo=ZoneInfo("UTC")))
    text = override.to_ical().decode()
    assert "DTSTART:20261216T140000Z" in text and "DURATION:PT1H30M" in text
    assert "DTEND" not in text


@pytest.mark.parametrize(("uid", "rid", "message"), [
    pytest.param("x", datetime(2026, 12, 15, 14, 0, tzinfo=ZoneInfo("UTC")),
                 r"no occurrence at 2026-12-15T14:00:00\+00:00", id="excluded-by-exdate"),
    pytest.param("x", datetime(2026, 12, 14, 15, 0, tzinfo=ZoneInfo("UTC")),
                 "no occurrence at", id="not-on-the-rule"),
    pytest.param("missing", datetime(2026, 12, 14, 14, 0, tzinfo=ZoneInfo("UTC")),
                 "no series master", id="unknown-uid"),
])
def test_an_override_for_no_occurrence_is_refused(uid, rid, message):
    text = ics(event("x", "DTSTART:20261214T140000Z", "DTEND:20261214T150000Z",
                     "RRULE:FREQ=DAILY;COUNT=3", "EXDATE:20261215T140000Z"))
    with pytest.raises(CalendarParseError, match=message):
        find_or_create_override(parse_calendar(text), uid, rid)
