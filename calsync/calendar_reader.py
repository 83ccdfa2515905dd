"""Session occurrences from calendar objects (pure: takes texts, returns values).

`parse_occurrences` turns the calendar objects of one calendar (a local .ics file or a
CalDAV collection) into the `model.Occurrence`s of a window, sorted by start: every series
expanded, overrides and EXDATE respected (see `recurrence`), and only session events
(`codec.is_session_event`); every other event is not calsync's and is passed over without
a word, even when it is malformed.

One bad event does not hide the others. A calendar object that is not iCalendar, a series
with an unknown time zone or a rule that cannot be expanded, a plan that makes no sense (a
budget that is not a number, per-model budgets above the total): each becomes one
`CalendarParseError` in `Reading.problems`, naming the calendar, the UID and the property,
and everything else is still listed. The CLI prints the problems after the listing and
exits with code 2 when there are any (decided here: a partial answer is more use to a
person than none, and the exit code still tells scripts that something was wrong).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from .codec import is_session_event, read_plan
from .errors import CalendarParseError, PlanError
from .model import CalendarObject, Occurrence, SessionPlan
from .recurrence import RawOccurrence, occurrences_between, parse_calendar


@dataclass(frozen=True, slots=True)
class Reading:
    """What one calendar says about a window: its sessions, and what could not be read."""

    occurrences: tuple[Occurrence, ...]
    problems: tuple[CalendarParseError, ...]


def parse_occurrences(
    objects: Iterable[CalendarObject], start: datetime, end: datetime, tz: tzinfo,
    *, location: str,
) -> Reading:
    """The session occurrences overlapping [start, end), from every object of a calendar.

    `location` names the calendar in problems (the .ics path or the collection URL).
    Floating and all-day times are placed in `tz`, and every start and end is given in it.
    """
    occurrences: list[Occurrence] = []
    problems: dict[str, CalendarParseError] = {}
    for obj in objects:
        try:
            calendar = parse_calendar(obj.text, path=_where(location, obj))
        except CalendarParseError as exc:
            problems.setdefault(str(exc), exc)
            continue
        reading = occurrences_in(calendar, obj.href, start, end, tz, location=location)
        occurrences.extend(reading.occurrences)
        for problem in reading.problems:
            problems.setdefault(str(problem), problem)
    occurrences.sort(key=lambda o: (o.start, o.end, o.uid))
    return Reading(tuple(occurrences), tuple(problems.values()))


def occurrences_in(
    calendar: Calendar, href: str, start: datetime, end: datetime, tz: tzinfo,
    *, location: str,
) -> Reading:
    """As `parse_occurrences`, for one calendar object already parsed (not changed here)."""
    occurrences: list[Occurrence] = []
    problems: dict[str, CalendarParseError] = {}
    zone_problem = _standard_calendar_zone(calendar, location)
    if zone_problem is not None:
        problems.setdefault(str(zone_problem), zone_problem)
    plans = _Plans(location)
    for series in _series(calendar):
        try:
            found = occurrences_between(series, start, end, tz, path=location)
        except CalendarParseError as exc:
            problems.setdefault(str(exc), exc)
            continue
        for raw in found:
            occurrence = _occurrence(raw, plans, href)
            if occurrence is not None:
                occurrences.append(occurrence)
    for plan_error in plans.problems:
        problems.setdefault(str(plan_error), plan_error)
    occurrences.sort(key=lambda o: (o.start, o.end, o.uid))
    return Reading(tuple(occurrences), tuple(problems.values()))


class _Plans:
    """Each VEVENT's plan read once; a broken plan reported once, whatever it spans."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.problems: list[PlanError] = []
        self._read: dict[int, SessionPlan | None] = {}

    def of(self, event: Event) -> SessionPlan | None:
        """The plan of `event`, or None when it is broken (and then reported)."""
        key = id(event)
        if key not in self._read:
            try:
                self._read[key] = read_plan(event, path=self.location)
            except PlanError as exc:
                self.problems.append(exc)
                self._read[key] = None
        return self._read[key]


def _occurrence(raw: RawOccurrence, plans: _Plans, href: str) -> Occurrence | None:
    source = _plan_source(raw, plans)
    if source is None:
        return None
    plan = plans.of(source)
    if plan is None:
        return None
    return Occurrence(
        uid=raw.uid,
        recurrence_id=raw.recurrence_id,
        start=raw.start,
        end=raw.end,
        all_day=raw.all_day,
        summary=str(raw.event.get("SUMMARY", "")),
        plan=plan,
        cancelled=raw.cancelled,
        href=href,
    )


def _plan_source(raw: RawOccurrence, plans: _Plans) -> Event | None:
    """The VEVENT whose plan applies to this occurrence; None when it is not a session.

    An override inherits nothing from its master in iCalendar: a client that moves one
    occurrence may write an override with only the new times. Such an override (no
    X-CLAUDE plan properties and no plan block, or only calsync's actuals) would lose the
    session, so it takes the plan of its series master instead. An override that states a
    plan of its own (a person edited that occurrence's budget or goals) keeps its own.
    """
    own = raw.override if raw.override is not None else raw.master
    if own is None:
        return None
    if raw.override is None or raw.master is None or not is_session_event(raw.master):
        return own if is_session_event(own) else None
    if is_session_event(own) and plans.of(own) != SessionPlan():
        return own
    return raw.master


def _series(calendar: Calendar) -> Iterator[Calendar]:
    """One calendar per UID that holds a session event: its VEVENTs, with the VTIMEZONEs.

    Expanding each UID on its own keeps one broken series from hiding the rest.
    """
    timezones = [c for c in calendar.subcomponents if c.name == "VTIMEZONE"]
    by_uid: dict[str, list[Event]] = {}
    for component in calendar.subcomponents:
        if isinstance(component, Event):
            by_uid.setdefault(str(component.get("UID", "")), []).append(component)
    for events in by_uid.values():
        if not any(is_session_event(event) for event in events):
            continue
        series = calendar.copy()
        series.subcomponents = [*timezones, *events]
        yield series


def _standard_calendar_zone(calendar: Calendar, location: str) -> CalendarParseError | None:
    """Make X-WR-TIMEZONE an IANA name; drop it (and say so) when it names no zone.

    recurring-ical-events moves UTC times into this zone (Google's meaning of it) and
    needs an IANA name; Windows names are mapped the way icalendar maps TZIDs.
    """
    name = calendar.get("X-WR-TIMEZONE")
    if name is None:
        return None
    from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

    key = WINDOWS_TO_OLSON.get(str(name).strip(), str(name).strip())
    try:
        ZoneInfo(key)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        pass
    else:
        calendar["X-WR-TIMEZONE"] = key
        return None
    del calendar["X-WR-TIMEZONE"]
    return CalendarParseError(
        f"unknown time zone {str(name)!r}; times are read as written", path=location,
        property="X-WR-TIMEZONE",
    )


def _where(location: str, obj: CalendarObject) -> str:
    """The object itself when it has a URL of its own (CalDAV), else the calendar."""
    if location.startswith(("http://", "https://")) and obj.href.startswith("/"):
        return urljoin(location, obj.href)
    return location
