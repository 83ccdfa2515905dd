"""Occurrences in a window, and the RECURRENCE-ID override of one occurrence (pure).

Series are expanded by recurring-ical-events, which respects RRULE (every UNTIL form),
RDATE, EXDATE, overrides and X-WR-TIMEZONE. This module adds what calsync needs on top:

- times a person can compare: floating and all-day (DATE) values are placed in the zone
  the caller passes in, and every start/end comes out timezone-aware;
- a time zone that cannot be resolved is an error, not a silent floating time: icalendar
  maps Outlook's Windows names ("Eastern Standard Time") to IANA zones and reads custom
  VTIMEZONE definitions, and anything it still cannot place is reported with the UID and
  the property;
- `override_in`, for sync: the override VEVENT of one occurrence, inside one calendar
  object, created from the master when absent (`find_or_create_override` does the same in
  a copy, leaving the object as it was).

Nothing here reads the clock, the environment or a file.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import recurring_ical_events  # type: ignore[import-untyped]
from icalendar import Calendar, Component, Event, Parameters
from icalendar.error import GloballyUniqueTZIDGuessed
from icalendar.prop import vDDDLists, vDDDTypes

from .errors import CalendarParseError

TIME_PROPERTIES = ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE")
SERIES_PROPERTIES = ("RRULE", "RDATE", "EXDATE", "EXRULE")

_MARGIN = timedelta(days=2)  # wider than any UTC offset: floating times are placed after


@dataclass(frozen=True, slots=True)
class RawOccurrence:
    """One occurrence as the calendar states it, before its plan is read.

    `event` is the occurrence itself (a copy of the master moved to this instance, or of
    its override). `override` and `master` are the VEVENTs of the calendar it came from:
    the override that states this occurrence (None when the master does), and the series
    master (None for an override whose master is missing). `recurrence_id` is None for a
    single event, else the original start as the calendar writes it (a date for all-day
    series, naive for floating ones). `start` and `end` are aware.
    """

    uid: str
    recurrence_id: date | datetime | None
    start: datetime
    end: datetime
    all_day: bool
    cancelled: bool
    event: Event
    override: Event | None
    master: Event | None


def place(value: date | datetime, tz: tzinfo) -> datetime:
    """An aware datetime: floating times and dates (at midnight) are placed in `tz`."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    return datetime.combine(value, time(), tzinfo=tz)


def instant_key(value: date | datetime) -> date | datetime:
    """A key under which two spellings of one RECURRENCE-ID compare equal."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def parse_calendar(text: str, *, path: str | None = None) -> Calendar:
    """A VCALENDAR from text; `CalendarParseError` naming `path` when it is not one."""
    try:
        with _quiet_tz_guesses():
            calendars = Calendar.from_ical(text, multiple=True)
    except ValueError as exc:
        raise CalendarParseError(f"not an iCalendar file: {_first_line(exc)}", path=path) from None
    if not calendars:
        raise CalendarParseError("no VCALENDAR in it", path=path)
    return calendars[0]


def unknown_time_zone(event: Event) -> tuple[str, str] | None:
    """(property, TZID) of the first time in `event` whose TZID names no known zone.

    icalendar leaves such a time naive (floating) without a word; a VTIMEZONE in the same
    calendar or a Windows zone name both resolve, so what is left is truly unknown.
    """
    for name in TIME_PROPERTIES:
        for prop in _as_list(event.get(name)):
            tzid = getattr(prop, "params", {}).get("TZID")
            if tzid and any(_is_floating(value) for value in _values_of(prop)):
                return name, str(tzid)
    return None


def occurrences_between(
    calendar: Calendar, start: datetime, end: datetime, tz: tzinfo, *, path: str | None = None,
) -> list[RawOccurrence]:
    """Every occurrence of every VEVENT in `calendar` that overlaps [start, end).

    Floating and all-day times are placed in `tz`, also when the calendar names an
    X-WR-TIMEZONE (Apple writes one next to its floating events, which mean "wherever I
    am"); X-WR-TIMEZONE still moves UTC series into that zone, as Google means it.
    Sorted by start, then UID. Raises
    `CalendarParseError` (naming `path`, the UID and the property) when a time zone is
    unknown or a series cannot be expanded; callers that want one bad series not to hide
    the others call this once per UID (see `calendar_reader`).
    """
    events = [c for c in calendar.subcomponents if isinstance(c, Event)]
    for event in events:
        problem = unknown_time_zone(event)
        if problem:
            prop, tzid = problem
            raise CalendarParseError(
                f"unknown time zone {tzid!r}", path=path, uid=_uid(event), property=prop,
                hint="use an IANA name like America/New_York or include its VTIMEZONE",
            )
    masters = {_uid(e): e for e in events if "RECURRENCE-ID" not in e}
    overrides = {
        (_uid(e), instant_key(place(_time(e, "RECURRENCE-ID"), tz))): e
        for e in events if "RECURRENCE-ID" in e
    }
    placed = _with_floating_placed(calendar, tz)
    found = [
        _raw(component, masters, overrides, tz)
        for component in _expand(placed, start - _MARGIN, end + _MARGIN, path)
    ]
    inside = [o for o in found if o.start < end and (o.end > start or o.start >= start)]
    return sorted(inside, key=lambda o: (o.start, o.uid))


def find_or_create_override(
    calendar: Calendar, uid: str, recurrence_id: date | datetime,
) -> tuple[Calendar, Event]:
    """The override VEVENT of one occurrence, in a copy of `calendar` that holds it.

    `calendar` is one calendar object (a master and its overrides) and is left unchanged.
    If an override with this UID and RECURRENCE-ID exists, the copy is otherwise equal
    and the override is the person's, edits and all. If not, one is created from the
    master: every property and VALARM of the master except RRULE, RDATE, EXDATE and
    EXRULE, with RECURRENCE-ID, DTSTART and DTEND (or the master's DURATION) of that
    occurrence, written with the master's own TZID so its VTIMEZONE still applies. It is
    placed right after the last VEVENT of the UID. Edit the returned event, then serialise
    the returned calendar. `recurrence_id` is compared as an instant when aware; give it as
    the calendar writes it (a date for all-day series, naive for floating ones).
    Raises `CalendarParseError` when the series has no master or no such occurrence.
    """
    result = copy.deepcopy(calendar)
    return result, override_in(result, uid, recurrence_id)


def override_in(calendar: Calendar, uid: str, recurrence_id: date | datetime,
                at: tuple[datetime, datetime] | None = None) -> Event:
    """As `find_or_create_override`, but in `calendar` itself, which it may change.

    For a caller that already owns a copy and writes many occurrences into it: copying the
    object once per occurrence made planning a year-long series quadratic. `at`, the
    occurrence's (start, end) as the caller expanded it, spares expanding the series again
    when the master's times are aware.
    """
    events = [c for c in calendar.subcomponents if isinstance(c, Event) and _uid(c) == uid]
    key = instant_key(recurrence_id)
    for event in events:
        if "RECURRENCE-ID" in event and instant_key(_time(event, "RECURRENCE-ID")) == key:
            return event
    master = next((e for e in events if "RECURRENCE-ID" not in e), None)
    if master is None:
        raise CalendarParseError("no series master to create an override from", uid=uid)
    start = _time(master, "DTSTART")
    if at is not None and isinstance(start, datetime) and start.tzinfo is not None:
        occurrence = Event()
        occurrence.add("DTSTART", at[0])
        occurrence.add("DTEND", at[1])
    else:
        occurrence = _instance_of(calendar, master, recurrence_id)
    override = _override_from(master, occurrence)
    position = calendar.subcomponents.index(events[-1]) + 1
    calendar.subcomponents.insert(position, override)
    return override


def _override_from(master: Event, occurrence: Event) -> Event:
    start = _time(occurrence, "DTSTART")
    override = Event()
    for name, value in master.items():
        if name in SERIES_PROPERTIES:
            continue
        if name == "DTSTART":
            value = _like(_prop(master, "DTSTART"), start)
        elif name == "DTEND":
            value = _like(_prop(master, "DTEND"), _time(occurrence, "DTEND"))
        override[name] = copy.deepcopy(value)
        if name == "UID":
            override["RECURRENCE-ID"] = _like(_prop(master, "DTSTART"), start)
    override.subcomponents = copy.deepcopy(master.subcomponents)
    return override


def _like(prop: vDDDTypes, value: date | datetime) -> vDDDTypes:
    """`value` written the way `prop` is: same zone, same parameters (TZID, VALUE)."""
    old = prop.dt
    if isinstance(value, datetime) and isinstance(old, datetime) and old.tzinfo is not None:
        value = value.astimezone(old.tzinfo)
    new = vDDDTypes(value)
    new.params = Parameters(dict(prop.params))
    return new


def _instance_of(calendar: Calendar, master: Event, recurrence_id: date | datetime) -> Event:
    alone = Calendar()
    alone.subcomponents = [c for c in calendar.subcomponents if c.name == "VTIMEZONE"]
    alone.subcomponents.append(master)
    margin = _MARGIN if isinstance(recurrence_id, datetime) else timedelta(days=1)
    low, high = recurrence_id - margin, recurrence_id + margin + timedelta(days=1)
    key = instant_key(recurrence_id)
    for occurrence in _expand(alone, low, high, None):
        if instant_key(_time(occurrence, "DTSTART")) == key:
            return occurrence
    raise CalendarParseError(
        f"the series has no occurrence at {recurrence_id.isoformat()}", uid=_uid(master),
        property="RECURRENCE-ID",
    )


def _expand(
    calendar: Calendar, start: date | datetime, end: date | datetime, path: str | None,
) -> Iterator[Event]:
    try:
        with _quiet_tz_guesses():
            found: list[Event] = recurring_ical_events.of(calendar).between(start, end)
    except (ValueError, KeyError, TypeError) as exc:  # bad rules or values, unknown zones
        uids = sorted({str(c.get("UID", "")) for c in calendar.walk("VEVENT")})
        raise CalendarParseError(
            f"cannot expand: {_first_line(exc)}", path=path, uid=", ".join(uids) or None,
        ) from None
    yield from found


def _raw(
    occurrence: Event,
    masters: dict[str, Event],
    overrides: dict[tuple[str, date | datetime], Event],
    tz: tzinfo,
) -> RawOccurrence:
    uid = _uid(occurrence)
    master = masters.get(uid)
    stated = _time(occurrence, "RECURRENCE-ID") if "RECURRENCE-ID" in occurrence else None
    key = (uid, instant_key(place(stated, tz))) if stated is not None else None
    override = overrides.get(key) if key is not None else None
    is_series = override is not None or (
        master is not None and any(name in master for name in ("RRULE", "RDATE"))
    )
    start_value = _time(occurrence, "DTSTART")
    end_value = _time(occurrence, "DTEND") if "DTEND" in occurrence else start_value
    return RawOccurrence(
        uid=uid,
        recurrence_id=(
            _as_written(stated, override or master, tz) if is_series and stated else None
        ),
        start=place(start_value, tz).astimezone(tz),
        end=place(end_value, tz).astimezone(tz),
        all_day=not isinstance(start_value, datetime),
        cancelled=str(occurrence.get("STATUS", "")).upper() == "CANCELLED",
        event=occurrence,
        override=override,
        master=master,
    )


def _with_floating_placed(calendar: Calendar, tz: tzinfo) -> Calendar:
    """A shallow copy whose events have their floating times placed in `tz`."""
    placed = calendar.copy()
    placed.subcomponents = [
        _event_placed(c, tz) if isinstance(c, Event) else c for c in calendar.subcomponents
    ]
    return placed


def _event_placed(event: Event, tz: tzinfo) -> Event:
    changed: dict[str, Any] = {}
    for name in TIME_PROPERTIES:
        props = _as_list(event.get(name))
        if any(_is_floating(v) for p in props for v in _values_of(p)):
            new = [_prop_placed(p, tz) for p in props]
            changed[name] = new if isinstance(event[name], list) else new[0]
    if not changed:
        return event
    copied = event.copy()
    copied.update(changed)
    copied.subcomponents = event.subcomponents
    return copied


def _prop_placed(prop: Any, tz: tzinfo) -> Any:
    if isinstance(prop, vDDDLists):
        return vDDDLists([_in(item.dt, tz) for item in prop.dts])
    return vDDDTypes(_in(prop.dt, tz))


def _in(value: Any, tz: tzinfo) -> Any:
    return value.replace(tzinfo=tz) if _is_floating(value) else value


def _as_written(
    value: date | datetime, source: Event | None, tz: tzinfo,
) -> date | datetime:
    """A RECURRENCE-ID in the form its calendar writes it: naive again for floating series."""
    original = None
    if source is not None:
        original = _time(source, "RECURRENCE-ID" if "RECURRENCE-ID" in source else "DTSTART")
    if isinstance(value, datetime) and _is_floating(original):
        return value.astimezone(tz).replace(tzinfo=None)
    return value


def _prop(component: Component, name: str) -> vDDDTypes:
    prop: Any = component.get(name)
    if not isinstance(prop, vDDDTypes):
        raise CalendarParseError("missing or not a date", uid=_uid(component), property=name)
    return prop


def _time(component: Component, name: str) -> date | datetime:
    """A DATE or DATE-TIME property's value (datetime is a subclass of date)."""
    value = _prop(component, name).dt
    if not isinstance(value, date):
        raise CalendarParseError("not a date or date-time", uid=_uid(component), property=name)
    return value


def _uid(event: Component) -> str:
    return str(event.get("UID", ""))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _values_of(prop: Any) -> list[Any]:
    if isinstance(prop, vDDDLists):  # EXDATE / RDATE: a list of values on one line
        return [item.dt for item in prop.dts]
    return [getattr(prop, "dt", None)]


def _is_floating(value: Any) -> bool:
    return isinstance(value, datetime) and value.tzinfo is None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().strip("'\"")
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def _quiet_tz_guesses() -> Iterator[None]:
    """Thunderbird's old "/mozilla.org/.../Europe/Berlin" TZIDs: icalendar's guess is right."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GloballyUniqueTZIDGuessed)
        yield
