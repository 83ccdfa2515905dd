"""Generated templates read the same everywhere: two independent parsers, two real servers.

icalendar + recurring-ical-events resolve TZID through zoneinfo; vobject resolves it through
the VTIMEZONE in the file (dateutil's tzical). Agreeing on every occurrence, in UTC, across
daylight-saving changes, shows that the RRULE-form VTIMEZONE says what zoneinfo says.
Radicale and strict Xandikos must accept each calendar object (no METHOD) as it is, and
evaluate its recurrence in time-range queries.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import caldav
import icalendar
import pytest
import recurring_ical_events
import vobject

from calsync import schedule_file, weekly
from calsync.pricing import load_prices

DTSTAMP = datetime(2026, 11, 1, tzinfo=UTC)
EXAMPLE_SCHEDULE = Path(__file__).parents[1] / "examples" / "schedule.toml"

Occurrence = tuple[str, datetime, datetime]


def generate(schedule: schedule_file.Schedule, start: date, weeks: int, tz: str):
    return weekly.plan_series(schedule, project="interop", start=start, weeks=weeks,
                              tz=schedule_file.zone(tz), prices=load_prices())


CASES = {
    # New York changes to daylight time on 2027-03-14
    "weekly-new-york-spring": lambda: generate(
        schedule_file.load_preset("weekly"), date(2027, 2, 1), 10, "America/New_York"),
    # Sydney leaves daylight time on 2027-04-04, in the middle of the launch
    "launch-sydney-autumn": lambda: generate(
        schedule_file.load_preset("launch-6-weeks"), date(2027, 3, 15), 6, "Australia/Sydney"),
    # Berlin changes on 2027-03-28 and 2027-10-31; phases of the person's own file
    "own-schedule-berlin": lambda: generate(
        schedule_file.load_schedule_file(EXAMPLE_SCHEDULE), date(2027, 3, 1), 8,
        "Europe/Berlin"),
    "weekly-berlin-autumn": lambda: generate(
        schedule_file.load_preset("weekly"), date(2027, 10, 11), 6, "Europe/Berlin"),
}


def by_recurring_ical_events(text: str) -> set[Occurrence]:
    calendar = icalendar.Calendar.from_ical(text)
    found = recurring_ical_events.of(calendar).between(date(2020, 1, 1), date(2030, 1, 1))
    return {(str(e["UID"]), e.start.astimezone(UTC), e.end.astimezone(UTC)) for e in found}


def by_vobject(text: str) -> set[Occurrence]:
    out = set()
    for event in vobject.readOne(text).vevent_list:
        length = event.dtend.value - event.dtstart.value
        for start in event.getrruleset(addRDate=True):
            assert type(start.tzinfo).__name__ == "_tzicalvtz"  # the file's VTIMEZONE
            out.add((event.uid.value, start.astimezone(UTC), (start + length).astimezone(UTC)))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_icalendar_and_vobject_find_the_same_occurrences(case):
    series = CASES[case]()
    text = weekly.render_calendar(series, dtstamp=DTSTAMP)
    ours = by_recurring_ical_events(text)
    assert ours == by_vobject(text)
    assert len(ours) == sum(s.count for s in series)
    # the window crosses a daylight-saving change: the UTC hour of a series moves
    utc_hours = {one.uid: {start.hour for uid, start, _ in ours if uid == one.uid}
                 for one in series}
    assert any(len(hours) == 2 for hours in utc_hours.values())


def test_occurrences_keep_their_wall_clock_time_across_the_change():
    series = CASES["weekly-new-york-spring"]()
    found = by_recurring_ical_events(weekly.render_calendar(series, dtstamp=DTSTAMP))
    zone = schedule_file.zone("America/New_York")
    local = {(s.astimezone(zone).strftime("%a %H:%M"), e.astimezone(zone).strftime("%H:%M"))
             for _, s, e in found}
    assert local == {("Mon 14:00", "17:00"), ("Wed 14:00", "17:00"), ("Fri 13:00", "16:00")}


# --- real servers ---------------------------------------------------------------------------

def client_for(dav_server) -> caldav.DAVClient:
    return caldav.DAVClient(url=dav_server.url, username=dav_server.username,
                            password=dav_server.password, enable_rfc6764=False, timeout=10)


def test_servers_accept_every_object_as_generated(dav_server, new_calendar):
    series = CASES["launch-sydney-autumn"]()
    objects = weekly.render_objects(series, dtstamp=DTSTAMP)
    with client_for(dav_server) as client:
        for uid, text in objects:
            response = client.put(f"{new_calendar}{uid.split('@')[0]}.ics", text, {
                "Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"})
            assert response.status in (201, 204), (uid, response.status)
        stored = client.calendar(url=new_calendar).events()
        back = {str(e.icalendar_component["UID"]): e.icalendar_component for e in stored}
    assert set(back) == {uid for uid, _ in objects}
    for event in back.values():
        assert len(event.walk("VALARM")) == 2
        assert event["RRULE"]["FREQ"] == ["WEEKLY"]
        assert str(event["X-CLAUDE-PROJECT"]) == "interop"


def test_servers_expand_the_series_in_time_range_queries(dav_server, new_calendar):
    series = CASES["weekly-new-york-spring"]()
    with client_for(dav_server) as client:
        for uid, text in weekly.render_objects(series, dtstamp=DTSTAMP):
            client.put(f"{new_calendar}{uid.split('@')[0]}.ics", text,
                       {"Content-Type": "text/calendar; charset=utf-8"})
        calendar = client.calendar(url=new_calendar)

        def uids_between(start: datetime, end: datetime) -> set[str]:
            found = calendar.search(start=start, end=end, event=True)
            return {str(e.icalendar_component["UID"]) for e in found}

        last_week = datetime(2027, 4, 5, tzinfo=UTC)  # week 10: Mon 5 to Sun 11 April
        assert uids_between(last_week, last_week + timedelta(days=7)) == {s.uid for s in series}
        after = last_week + timedelta(days=7)
        assert uids_between(after, after + timedelta(days=30)) == set()
        # Wednesday 17 March 2027, 14:00 in New York is 18:00 UTC (daylight time since the 14th)
        wednesday = datetime(2027, 3, 17, 18, 30, tzinfo=UTC)
        assert uids_between(wednesday, wednesday + timedelta(minutes=10)) == {series[1].uid}
