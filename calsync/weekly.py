"""Weekly templates: a schedule → VCALENDAR text that imports cleanly everywhere (pure).

`plan_series(schedule, ...)` decides the events: one weekly series per phase and slot, each
with its own UNTIL, so a phase that changes the session type starts a new series and a
re-import updates the same UIDs instead of adding copies. `render_calendar(...)` writes a
file for import (METHOD:PUBLISH); `render_objects(...)` writes one calendar object per
series for a CalDAV server (no METHOD). DTSTAMP is an argument: nothing here reads the clock.

What every VEVENT carries (issue 2, section 4): UID stable for the same project, schedule,
phase, slot and first week; DTSTAMP; SEQUENCE:0; DTSTART/DTEND with TZID; RRULE weekly with
BYDAY and UNTIL in UTC; SUMMARY "Claude Code: <project> - <session type>"; the plan as
X-CLAUDE-* properties and DESCRIPTION plan block (`codec.write_plan`); two VALARMs. No
ORGANIZER or ATTENDEE. The VTIMEZONE is built here in RRULE form from zoneinfo, because
icalendar's `Timezone.from_tzid` writes RDATE lists, which Outlook mis-shifts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard

from .codec import write_plan
from .errors import TemplateError
from .model import Budget, Family, Goal, SessionPlan
from .pricing import FAMILY_REFERENCE_MODEL, PriceTable
from .schedule_file import WEEKDAYS, Schedule, SessionType, Slot

PRODID = "-//calsync//calsync template//EN"
_BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Series:
    """One weekly series: a slot of a phase, from its first to its last occurrence."""

    uid: str
    phase: str
    slot: Slot
    first_start: datetime  # aware, in the template's zone
    last_start: datetime
    count: int
    summary: str
    plan: SessionPlan

    @property
    def first_end(self) -> datetime:
        return datetime.combine(self.first_start.date(), self.slot.end, self.first_start.tzinfo)


# --- cost estimate ----------------------------------------------------------------------

def estimate_cost_usd(
    budget: Budget, primary_model: str | None, prices: PriceTable,
) -> tuple[Decimal, Decimal] | None:
    """(low, high) USD for the budget: every token billed as input, or every token as output.

    Each family's share is priced at its reference model (`pricing.FAMILY_REFERENCE_MODEL`);
    tokens of the total that no family was given count for the primary model's family
    (Sonnet when that is not a known family). None when a reference model has no price.
    """
    shares = {f: budget.for_family(f) or 0 for f in FAMILY_REFERENCE_MODEL}
    primary = Family.of(primary_model)
    primary = primary if primary in shares else Family.SONNET
    shares[primary] += max((budget.total or 0) - sum(shares.values()), 0)
    low = high = 0.0
    for family, tokens in shares.items():
        price = prices.lookup(FAMILY_REFERENCE_MODEL[family])
        if price is None:
            return None
        low += tokens * price.input / 1_000_000
        high += tokens * price.output / 1_000_000
    return (Decimal(str(low)).quantize(_CENT, ROUND_HALF_UP),
            Decimal(str(high)).quantize(_CENT, ROUND_HALF_UP))


def format_cost_range(budget: Budget, primary_model: str | None, prices: PriceTable) -> str:
    estimate = estimate_cost_usd(budget, primary_model, prices)
    if estimate is None:
        return "Estimated cost: unknown (no price for a reference model)"
    low, high = estimate
    return (f"Estimated cost: ${low} to ${high} (all budgeted tokens billed as input, or all "
            f"as output; list prices of {prices.as_of}; cache reads come on top)")


# --- the plan of each series ------------------------------------------------------------

def plan_for(session: SessionType, project: str, prices: PriceTable) -> SessionPlan:
    """The SessionPlan a template writes for one session type."""
    notes = list(session.notes)
    if session.activities:
        notes.append("Activities: " + "; ".join(session.activities))
    notes.append(format_cost_range(session.budget, session.primary_model, prices))
    return SessionPlan(
        project=project, session_type=session.name, framework=session.framework,
        primary_model=session.primary_model, budget=session.budget,
        cost_budget_usd=session.cost_budget_usd,
        goals=tuple(Goal(text=g) for g in session.goals),
        success_criteria=session.success_criteria, deliverables=session.deliverables,
        notes=tuple(notes),
    )


def _uid(*parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return f"{digest[:32]}@calsync"


def plan_series(
    schedule: Schedule, *, project: str, start: date, weeks: int, tz: ZoneInfo,
    prices: PriceTable,
) -> tuple[Series, ...]:
    """The weekly series of `weeks` weeks; week 1 is the Monday-to-Sunday week of `start`.

    Sessions of week 1 that fall before `start` are left out. Raises TemplateError when
    `weeks` reaches past the last week the schedule plans.
    """
    planned = schedule.planned_weeks
    if weeks < 1 or (planned is not None and weeks > planned):
        raise TemplateError(f"{weeks} weeks asked for, but schedule {schedule.name!r} plans "
                            f"weeks 1 to {planned}" if weeks >= 1 else "must be at least 1",
                            key="--weeks")
    monday = start - timedelta(days=start.weekday())
    out = []
    for phase in schedule.phases:
        last_week = min(phase.last_week or weeks, weeks)
        seen: dict[int, int] = {}
        for slot in phase.slots:
            ordinal = seen[slot.day] = seen.get(slot.day, -1) + 1
            first = monday + timedelta(weeks=phase.first_week - 1, days=slot.day)
            first += timedelta(weeks=1) if first < start else timedelta()
            last = monday + timedelta(weeks=last_week - 1, days=slot.day)
            if first > last:
                continue
            plan = plan_for(slot.session, project, prices)
            out.append(Series(
                uid=_uid(project, schedule.name, phase.name, WEEKDAYS[slot.day], ordinal, monday),
                phase=phase.name, slot=slot,
                first_start=datetime.combine(first, slot.start, tz),
                last_start=datetime.combine(last, slot.start, tz),
                count=(last - first).days // 7 + 1,
                summary=f"Claude Code: {project} - {slot.session.name}", plan=plan,
            ))
    if not out:
        raise TemplateError(f"no session of {schedule.name!r} falls between {start} and the end "
                            f"of week {weeks}", key="--start")
    return tuple(sorted(out, key=lambda s: (s.first_start, s.slot.start, s.uid)))


# --- VTIMEZONE in RRULE form --------------------------------------------------------------

_State = tuple[timedelta, timedelta, str]


@dataclass(frozen=True)
class _Transition:
    at: datetime  # UTC
    before: _State
    after: _State

    @property
    def local(self) -> datetime:
        """Wall-clock time of the change, in the offset before it (as VTIMEZONE wants)."""
        return (self.at + self.before[0]).replace(tzinfo=None)

    @property
    def daylight(self) -> bool:
        """DAYLIGHT when the clocks go forward; on the way back (even when tzdata calls that
        a negative DST, as for Morocco) STANDARD, as clients expect."""
        if self.after[0] != self.before[0]:
            return self.after[0] > self.before[0]
        return bool(self.after[1])

    def key(self) -> tuple[object, ...]:
        local = self.local
        return (self.daylight, local.month, local.weekday(), local.time(), self.before[0],
                self.after[0], self.after[2])

    def ordinals(self) -> set[int]:
        """Which week of the month this weekday is: n-th from the start, or -1 (the last)."""
        local = self.local
        following = local + timedelta(weeks=1)
        return {(local.day - 1) // 7 + 1} | ({-1} if following.month != local.month else set())


def _state(tz: ZoneInfo, at: datetime) -> _State:
    local = at.astimezone(tz)
    return (local.utcoffset() or timedelta(), local.dst() or timedelta(), local.tzname() or "")


def _transitions(tz: ZoneInfo, begin: datetime, end: datetime) -> list[_Transition]:
    found, at, state = [], begin, _state(tz, begin)
    while at < end:
        step = at + timedelta(days=1)
        if _state(tz, step) == state:
            at = step
            continue
        low, high = 0, 86_400  # seconds after `at`: bisect to the second
        while high - low > 1:
            middle = (low + high) // 2
            same = _state(tz, at + timedelta(seconds=middle)) == state
            low, high = (middle, high) if same else (low, middle)
        changed = at + timedelta(seconds=high)
        after = _state(tz, changed)
        found.append(_Transition(changed, state, after))
        at, state = changed, after
    return found


def _runs(transitions: Iterable[_Transition]) -> list[tuple[list[_Transition], set[int]]]:
    """Transitions grouped into yearly rules: same kind, month, weekday, time and offsets."""
    runs: list[tuple[list[_Transition], set[int]]] = []
    for transition in transitions:
        for members, ordinals in runs:
            last = members[-1]
            common = ordinals & transition.ordinals()
            if (last.key() == transition.key() and common
                    and transition.local.year == last.local.year + 1):
                members.append(transition)
                ordinals.intersection_update(common)
                break
        else:
            runs.append(([transition], transition.ordinals()))
    return runs


def build_vtimezone(tz: ZoneInfo, first: date, last: date) -> Timezone:
    """A VTIMEZONE for `tz` that is right from a year before `first` to a year after `last`.

    Transitions come from zoneinfo; each run of yearly changes on the same weekday rule
    becomes one STANDARD/DAYLIGHT with a YEARLY RRULE (UNTIL when the rule ends within the
    range), a one-off change a component of its own: never RDATE lists.
    """
    begin = datetime(first.year - 2, 1, 1, tzinfo=UTC)  # the rules in force a year before
    end = datetime(last.year + 2, 1, 1, tzinfo=UTC)
    vtimezone = Timezone()
    vtimezone.add("tzid", tz.key)
    transitions = _transitions(tz, begin, end)
    if not transitions:
        state = _state(tz, begin)
        vtimezone.add_component(_component(datetime(1970, 1, 1), state, state, bool(state[1])))
        return vtimezone
    for members, ordinals in sorted(_runs(transitions), key=lambda run: run[0][0].at):
        head, tail = members[0], members[-1]
        component = _component(head.local, head.before, head.after, head.daylight)
        if len(members) > 1:
            ordinal = -1 if -1 in ordinals else min(ordinals)
            rule: dict[str, object] = {"FREQ": "YEARLY", "BYMONTH": head.local.month,
                                       "BYDAY": f"{ordinal}{_BYDAY[head.local.weekday()]}"}
            if tail.local.year < end.year - 1:
                rule["UNTIL"] = tail.at
            component.add("rrule", rule)
        vtimezone.add_component(component)
    return vtimezone


def _component(
    dtstart: datetime, before: _State, after: _State, daylight: bool,
) -> TimezoneStandard | TimezoneDaylight:
    component = TimezoneDaylight() if daylight else TimezoneStandard()
    component.add("dtstart", dtstart)
    component.add("tzoffsetfrom", before[0])
    component.add("tzoffsetto", after[0])
    if after[2]:
        component.add("tzname", after[2])
    return component


# --- events and calendars ---------------------------------------------------------------

def _budget_line(budget: Budget) -> str:
    shares = [f"{f.value.capitalize()} {n:,}" for f in FAMILY_REFERENCE_MODEL
              if (n := budget.for_family(f))]
    total = f"{budget.total:,} tokens" if budget.total is not None else "no token budget"
    return total + (f" ({', '.join(shares)})" if shares else "")


def _alarms(series: Series) -> list[Alarm]:
    plan = series.plan
    before = Alarm()
    before.add("action", "DISPLAY")
    before.add("description", (
        f"{series.summary} starts in 15 minutes. Budget: {_budget_line(plan.budget)}. "
        f"Primary model: {plan.primary_model or 'any'}. Used so far today: "
        f"calsync usage --by day --project {plan.project}"))
    before.add("trigger", timedelta(minutes=-15))
    summary = Alarm()
    summary.add("action", "DISPLAY")
    summary.add("description", (
        f"30 minutes left in {series.summary}: prepare the session summary. Mark the goals "
        "you finished with [x] in this event and note what comes next; calsync sync writes "
        "the actual usage into the event."))
    summary.add("trigger", timedelta(minutes=-30), parameters={"RELATED": "END"})
    return [before, summary]


def render_event(series: Series, *, dtstamp: datetime) -> Event:
    """The VEVENT of one series (DTSTAMP is converted to UTC)."""
    event = Event()
    event.add("uid", series.uid)
    event.add("dtstamp", dtstamp.astimezone(UTC))
    event.add("sequence", 0)
    event.add("dtstart", series.first_start)
    event.add("dtend", series.first_end)
    event.add("rrule", {"FREQ": "WEEKLY", "BYDAY": _BYDAY[series.slot.day],
                        "UNTIL": series.last_start.astimezone(UTC)})
    event.add("summary", series.summary)
    event.add("transp", "OPAQUE")
    write_plan(event, series.plan)
    for alarm in _alarms(series):
        event.add_component(alarm)
    return event


def _calendar(
    series: Sequence[Series], *, dtstamp: datetime, method: bool, calendar_name: str | None,
) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", "PUBLISH")
    if calendar_name:
        calendar.add("x-wr-calname", calendar_name)
    if series:
        tz = series[0].first_start.tzinfo
        assert isinstance(tz, ZoneInfo)
        first = min(s.first_start for s in series).date()
        last = max(s.last_start for s in series).date()
        calendar.add_component(build_vtimezone(tz, first, last))
    for one in series:
        calendar.add_component(render_event(one, dtstamp=dtstamp))
    return calendar


def render_calendar(
    series: Sequence[Series], *, dtstamp: datetime, method: bool = True,
    calendar_name: str | None = None,
) -> str:
    """One .ics text with every series: METHOD:PUBLISH for import, unless `method` is False.

    X-WR-CALNAME only when `calendar_name` is given (Outlook then imports into a new calendar).
    """
    text: bytes = _calendar(series, dtstamp=dtstamp, method=method,
                            calendar_name=calendar_name).to_ical()
    return text.decode("utf-8")


def render_objects(series: Sequence[Series], *, dtstamp: datetime) -> list[tuple[str, str]]:
    """(UID, text) of one calendar object per series, for a CalDAV server: no METHOD."""
    return [(one.uid, render_calendar([one], dtstamp=dtstamp, method=False)) for one in series]


def first_monday_on_or_after(day: date) -> date:
    """The default start: `day` itself if it is a Monday, else the next Monday."""
    return day + timedelta(days=(7 - day.weekday()) % 7)


def session_times(slot: Slot) -> str:
    return f"{WEEKDAYS[slot.day][:3].capitalize()} {slot.start:%H:%M}-{slot.end:%H:%M}"


# --- `calsync template --list` ------------------------------------------------------------

def _session_line(session: SessionType, prices: PriceTable) -> str:
    estimate = estimate_cost_usd(session.budget, session.primary_model, prices)
    cost = f"${estimate[0]} to ${estimate[1]}" if estimate else "cost unknown"
    return (f"{session.name}: {_budget_line(session.budget)}, primary "
            f"{session.primary_model or 'any'}, est. {cost}")


def _weeks_span(first: int, last: int | None) -> str:
    if last is None:
        return "every week" if first == 1 else f"from week {first}"
    return f"week {first}" if first == last else f"weeks {first}-{last}"


def format_listing(
    presets: Mapping[str, Schedule], types: Mapping[str, SessionType], prices: PriceTable,
) -> str:
    """The text of `calsync template --list`: presets, their sessions, the session types."""
    lines = ["Presets (calsync template --preset NAME):"]
    for name, schedule in presets.items():
        default = f"; {schedule.weeks} weeks unless --weeks" if schedule.weeks else ""
        lines.append(f"  {name}: {schedule.description}{default}")
        for phase in schedule.phases:
            lines.append(f"    {phase.name} ({_weeks_span(phase.first_week, phase.last_week)})")
            lines += [f"      {session_times(slot)}  {_session_line(slot.session, prices)}"
                      for slot in phase.slots]
    lines += ["", "Session types (use in a schedule file as type = \"KEY\"):"]
    lines += [f"  {key}: {_session_line(t, prices)}" for key, t in types.items()]
    lines += ["", f"est.: every budgeted token billed as input, or every one as output, at the "
              f"list prices of {prices.as_of}; cache reads come on top (templates/README.md)."]
    return "\n".join(lines)
