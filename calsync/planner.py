"""What a sync run will write, decided before anything is written (pure).

`plan_sync(objects, knowledge)` looks at every calendar object and returns a `SyncPlan`: one
decision per object, a frozen value with a reason a person can read:

WriteObject   the object's new text, written with If-Match on the etag that was read, and
              one `Change` per occurrence whose event changed
Skip          nothing to write (not a session event, nothing due, nothing changed)
Problem       the object holds a session calsync cannot read; it is left as it is

The rules (session-events.md; issue 4 §2):

- Only occurrences that have started by `now` (ended or in progress) get actuals; future
  ones are left alone. Status comes from `attribution.status_of`: missed, cancelled, ...
- A single event gets its actuals in its own VEVENT. An occurrence of a series gets them in
  its override (RECURRENCE-ID), created from the master when absent, carrying the series'
  plan; every occurrence of one series is one write of that calendar object.
- An override that already exists keeps the person's edits. Its plan follows the series'
  plan when calsync created it and nobody changed its plan since: `written_plans` holds, per
  (href, RECURRENCE-ID), the hash of the plan calsync last wrote there (`plan_hash`). Equal
  to the override's plan now: calsync's, so it follows the master. Different: the
  person's, kept.
- A write happens only when content changed, once DTSTAMP, LAST-MODIFIED, SEQUENCE, PRODID,
  X-RADICALE-* and X-CLAUDE-SYNCED-AT are ignored; X-CLAUDE-SYNCED-AT is set to `now`
  only on an event that changed. So a second plan with nothing new is empty.
- Objects that hold no session event are never written.

`read_views` is the same reading, for the caller that needs the occurrences first (to
attribute usage and ask git before planning): `sessions_in` lists them, and the views go
to `plan_sync`, so each object is parsed once (`read_sessions` does both steps, for a
caller that does not plan). `plan_object` plans one object again, for the engine after a
412.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo

from icalendar import Calendar, Component, Event

from .attribution import OccurrenceKey, budget_used_percent, key_of, status_of, summarize
from .calendar_reader import occurrences_in
from .codec import read_actuals, read_plan, write_actuals, write_plan
from .errors import CalendarParseError
from .model import Actuals, CalendarObject, GitStats, Occurrence, SessionPlan, Status
from .recurrence import instant_key, override_in, parse_calendar

VOLATILE = frozenset({"DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "PRODID", "X-CLAUDE-SYNCED-AT"})
VOLATILE_PREFIXES = ("X-RADICALE-",)
_MAY_BE_SESSION = re.compile(r"x-claude-|budget", re.IGNORECASE)
_FOLD = re.compile(r"\r?\n[ \t]")


# --- decisions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One occurrence whose event changes: what it is, and its VEVENT before and after."""

    uid: str
    recurrence_id: str | None
    summary: str
    start: datetime
    status: Status
    fields: tuple[str, ...]   # the properties that change ("new override" when created)
    before: str               # the VEVENT's content lines (a new override: as the series has it)
    after: str                # both "" unless Knowledge.diffs: rendering them is costly


@dataclass(frozen=True, slots=True)
class WriteObject:
    href: str
    etag: str | None
    new_text: str
    changes: tuple[Change, ...]
    old_text: str = ""
    plan_hashes: tuple[tuple[str, str], ...] = ()  # (RECURRENCE-ID, plan_hash) calsync wrote

    @property
    def reason(self) -> str:
        return f"{len(self.changes)} occurrence(s) changed"


@dataclass(frozen=True, slots=True)
class Skip:
    href: str
    reason: str


@dataclass(frozen=True, slots=True)
class Problem:
    href: str
    uid: str | None
    message: str


Decision = WriteObject | Skip | Problem


@dataclass(frozen=True, slots=True)
class SyncPlan:
    decisions: tuple[Decision, ...]
    occurrences: int            # occurrences in the window that have started
    problems: tuple[Problem, ...] = ()

    @property
    def writes(self) -> tuple[WriteObject, ...]:
        return tuple(d for d in self.decisions if isinstance(d, WriteObject))


@dataclass(frozen=True)
class Knowledge:
    """Everything the planner is told: the window, now, what happened, what it wrote before.

    `actuals` are attribution's sums per occurrence (status and budget use are recomputed
    here from the plan read now, so a re-plan after a person's edit stays right); `git` is
    per occurrence too; `written_plans` maps (href, RECURRENCE-ID text) to `plan_hash`.
    """

    start: datetime
    end: datetime
    now: datetime
    tz: tzinfo
    location: str
    actuals: Mapping[OccurrenceKey, Actuals] = field(default_factory=dict)
    git: Mapping[OccurrenceKey, GitStats] = field(default_factory=dict)
    written_plans: Mapping[tuple[str, str], str] = field(default_factory=dict)
    diffs: bool = True   # keep each changed VEVENT's text before and after (for --dry-run)


# --- small pure helpers -------------------------------------------------------------------


def plan_hash(plan: SessionPlan) -> str:
    return hashlib.sha256(plan.model_dump_json().encode()).hexdigest()[:32]


def format_recurrence_id(value: date | datetime | None) -> str | None:
    """A RECURRENCE-ID as stable text: UTC for aware times, as written for floating/dates."""
    if value is None:
        return None
    value = instant_key(value)
    if isinstance(value, datetime):
        return value.strftime("%Y%m%dT%H%M%S") + ("Z" if value.tzinfo else "")
    return value.strftime("%Y%m%d")


def may_hold_sessions(text: str) -> bool:
    """False when the text cannot hold a session event (so it need not even be parsed).

    Unfolding is only needed when the words are not there as written; most texts of a
    large calendar are ordinary events, and this runs on every one of them.
    """
    if _MAY_BE_SESSION.search(text):
        return True
    folded = "\n " in text or "\n\t" in text
    return folded and bool(_MAY_BE_SESSION.search(_FOLD.sub("", text)))


def _is_volatile(name: str) -> bool:
    return name in VOLATILE or name.startswith(VOLATILE_PREFIXES)


def _content(event: Component) -> dict[str, bytes]:
    """The event's properties that matter, as text, volatile ones left out."""
    found: dict[str, bytes] = {}
    for name, value in event.property_items(recursive=False, sorted=False):
        if name in ("BEGIN", "END") or _is_volatile(name):
            continue
        ical = value.to_ical() if hasattr(value, "to_ical") else str(value).encode()
        found[name] = found.get(name, b"") + b"\n" + ical
    for sub in event.subcomponents:
        found[f"BEGIN:{sub.name}"] = found.get(f"BEGIN:{sub.name}", b"") + sub.to_ical()
    return found


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> tuple[str, ...]:
    return tuple(sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n)))


def _ical(component: Component) -> str:
    data: bytes = component.to_ical(sorted=False)
    return data.decode("utf-8", "replace")


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    """One due occurrence and the plan that applies to it."""

    occurrence: Occurrence
    follows_master: bool   # an override whose plan is calsync's (or empty): the series' plan


@dataclass(frozen=True)
class _View:
    calendar: Calendar | None
    occurrences: tuple[Occurrence, ...]     # in the window, plans adjusted
    follows: frozenset[OccurrenceKey]
    problems: tuple[Problem, ...]


def _view(obj: CalendarObject, start: datetime, end: datetime, tz: tzinfo, location: str,
          written: Mapping[tuple[str, str], str]) -> _View:
    """The session occurrences of one object, with the plan each one follows."""
    if not may_hold_sessions(obj.text):
        return _View(None, (), frozenset(), ())
    calendar = parse_calendar(obj.text, path=location)
    reading = occurrences_in(calendar, obj.href, start, end, tz, location=location)
    problems = tuple(Problem(obj.href, p.uid, str(p)) for p in reading.problems)
    if not reading.occurrences:
        return _View(None, (), frozenset(), problems)
    series = _SeriesPlans(calendar, obj.href, written)
    occurrences: list[Occurrence] = []
    follows: set[OccurrenceKey] = set()
    for occurrence in reading.occurrences:
        if occurrence.recurrence_id is not None:
            master_plan = series.plan_for(occurrence)
            if master_plan is not None:
                occurrence = occurrence.model_copy(update={"plan": master_plan})
                follows.add(key_of(occurrence))
        occurrences.append(occurrence)
    return _View(calendar, tuple(occurrences), frozenset(follows), problems)


class _SeriesPlans:
    """Which occurrences of the series in one object follow the series' plan.

    An occurrence follows when it has no override yet, when its override states no plan of
    its own, or when the override's plan is the one calsync last wrote there. Masters,
    overrides and the masters' plans are looked up once per object, not per occurrence.
    """

    def __init__(self, calendar: Calendar, href: str,
                 written: Mapping[tuple[str, str], str]) -> None:
        self.href, self.written = href, written
        self.masters: dict[str, Component] = {}
        self.overrides: dict[tuple[str, date | datetime], Component] = {}
        for event in calendar.walk("VEVENT"):
            uid = str(event.get("UID", ""))
            if "RECURRENCE-ID" not in event:
                self.masters[uid] = event
            else:
                self.overrides[(uid, instant_key(event.decoded("RECURRENCE-ID")))] = event
        self._plans: dict[str, SessionPlan | None] = {}

    def master_plan(self, uid: str) -> SessionPlan | None:
        if uid not in self._plans:
            master = self.masters.get(uid)
            try:
                self._plans[uid] = None if master is None else read_plan(master)
            except CalendarParseError:
                self._plans[uid] = None
        return self._plans[uid]

    def plan_for(self, occurrence: Occurrence) -> SessionPlan | None:
        """The series' plan when this occurrence follows it, else None (the person's)."""
        assert occurrence.recurrence_id is not None
        master_plan = self.master_plan(occurrence.uid)
        override = self.overrides.get((occurrence.uid, instant_key(occurrence.recurrence_id)))
        if master_plan is None or override is None:
            return master_plan
        try:
            own = read_plan(override)
        except CalendarParseError:
            return None
        rid = format_recurrence_id(occurrence.recurrence_id) or ""
        if own == SessionPlan() or self.written.get((self.href, rid)) == plan_hash(own):
            return master_plan
        return None


Views = Mapping[str, _View | Problem]


def read_views(objects: Iterable[CalendarObject], *, start: datetime, end: datetime,
               tz: tzinfo, location: str, written_plans: Mapping[tuple[str, str], str]
               ) -> dict[str, _View | Problem]:
    """Each object read once, by href: its session occurrences, or why it cannot be read.

    Give the result to `plan_sync` so that one run parses every object only once.
    """
    views: dict[str, _View | Problem] = {}
    for obj in objects:
        try:
            views[obj.href] = _view(obj, start, end, tz, location, written_plans)
        except CalendarParseError as exc:
            views[obj.href] = Problem(obj.href, exc.uid, str(exc))
    return views


def sessions_in(views: Views) -> tuple[list[Occurrence], list[Problem]]:
    """Every session occurrence the views hold, and every problem found reading them."""
    occurrences: list[Occurrence] = []
    problems: list[Problem] = []
    for view in views.values():
        if isinstance(view, Problem):
            problems.append(view)
            continue
        occurrences.extend(view.occurrences)
        problems.extend(view.problems)
    return occurrences, problems


def read_sessions(objects: Iterable[CalendarObject], *, start: datetime, end: datetime,
                  tz: tzinfo, location: str, written_plans: Mapping[tuple[str, str], str]
                  ) -> tuple[list[Occurrence], list[Problem]]:
    """Every session occurrence in [start, end), with the plan sync will write into it."""
    return sessions_in(read_views(objects, start=start, end=end, tz=tz, location=location,
                                  written_plans=written_plans))


# --- planning -----------------------------------------------------------------------------


def final_actuals(occurrence: Occurrence, knowledge: Knowledge) -> Actuals:
    """The actuals to write: attribution's sums, with status and budget use from this plan."""
    key = key_of(occurrence)
    base = knowledge.actuals.get(key)
    if base is None:
        base = summarize(occurrence, (), count_cache_reads=False, prices=None,
                         now=knowledge.now)[0]
    budget = occurrence.plan.budget
    return base.model_copy(update={
        "budget_used_percent": budget_used_percent(base.tokens_total, budget),
        "status": status_of(occurrence, base.tokens_total, budget, knowledge.now),
        "git": knowledge.git.get(key, base.git),
    })


def _single_event(calendar: Calendar, uid: str) -> Event:
    for event in calendar.subcomponents:
        if isinstance(event, Event) and str(event.get("UID", "")) == uid \
                and "RECURRENCE-ID" not in event:
            return event
    raise CalendarParseError("the event is gone from its calendar object", uid=uid)


class _ObjectPlanner:
    """Writes the actuals of each due occurrence into one calendar object (a copy)."""

    def __init__(self, obj: CalendarObject, view: _View, knowledge: Knowledge) -> None:
        assert view.calendar is not None
        self.obj, self.view, self.knowledge = obj, view, knowledge
        # written into in place: a view is read for one planning of its object and used up
        # (copying a year of overrides per object cost as much as parsing it)
        self.calendar: Calendar = view.calendar
        self.changes: list[Change] = []
        self.hashes: list[tuple[str, str]] = []

    def event_of(self, occurrence: Occurrence) -> tuple[Event, bool]:
        """The VEVENT to write into, and whether it is a new override."""
        if occurrence.recurrence_id is None:
            return _single_event(self.calendar, occurrence.uid), False
        count = len(self.calendar.subcomponents)
        event = override_in(self.calendar, occurrence.uid, occurrence.recurrence_id,
                            at=(occurrence.start, occurrence.end))
        return event, len(self.calendar.subcomponents) > count

    def write(self, occurrence: Occurrence) -> None:
        event, created = self.event_of(occurrence)
        before = {} if created else _content(event)
        before_text = _ical(event) if self.knowledge.diffs else ""
        rid = format_recurrence_id(occurrence.recurrence_id)
        follows = key_of(occurrence) in self.view.follows
        if follows:
            write_plan(event, occurrence.plan)
        actuals = final_actuals(occurrence, self.knowledge)
        after: dict[str, bytes] = {}
        if not created:  # an event that exists changes only if its content does
            previous = read_actuals(event)
            synced_at = previous.synced_at if previous else None
            write_actuals(event, occurrence.plan,
                          actuals.model_copy(update={"synced_at": synced_at}))
            after = _content(event)
            if after == before:
                return
        now_utc = self.knowledge.now.astimezone(UTC).replace(microsecond=0)
        write_actuals(event, occurrence.plan, actuals.model_copy(update={"synced_at": now_utc}))
        if follows and rid is not None:
            self.hashes.append((rid, plan_hash(read_plan(event))))
        fields = ("new override",) if created else _changed(before, after)
        self.changes.append(Change(occurrence.uid, rid, occurrence.summary, occurrence.start,
                                   actuals.status, fields, before_text,
                                   _ical(event) if self.knowledge.diffs else ""))

    def decision(self) -> Decision:
        if not self.changes:
            return Skip(self.obj.href, "nothing changed")
        text = self.calendar.to_ical(sorted=False).decode("utf-8")
        return WriteObject(self.obj.href, self.obj.etag, text, tuple(self.changes),
                           self.obj.text, tuple(self.hashes))


def _plan_one(obj: CalendarObject, knowledge: Knowledge,
              view: _View | Problem | None = None) -> tuple[Decision, int, list[Problem]]:
    """The decision for one object, how many of its occurrences are due, its problems."""
    k = knowledge
    if view is None:
        view = read_views([obj], start=k.start, end=k.end, tz=k.tz, location=k.location,
                          written_plans=k.written_plans)[obj.href]
    if isinstance(view, Problem):
        return view, 0, [view]
    if view.calendar is None:
        return Skip(obj.href, "no session event in the window"), 0, list(view.problems)
    due = [o for o in view.occurrences if o.start <= k.now]
    if not due:
        return Skip(obj.href, "no session has started yet"), 0, list(view.problems)
    planner = _ObjectPlanner(obj, view, k)
    try:
        for occurrence in due:
            planner.write(occurrence)
    except CalendarParseError as exc:
        problem = Problem(obj.href, exc.uid, str(exc))
        return problem, len(due), [*view.problems, problem]
    return planner.decision(), len(due), list(view.problems)


def plan_object(obj: CalendarObject, knowledge: Knowledge) -> Decision:
    """The decision for one object (the engine re-plans with this after a 412)."""
    return _plan_one(obj, knowledge)[0]


def plan_sync(objects: Sequence[CalendarObject], knowledge: Knowledge,
              views: Views | None = None) -> SyncPlan:
    """One decision per calendar object; nothing is written here.

    `views` are `read_views` of the same objects under the same knowledge, when the caller
    has them already (it read the sessions to attribute usage): each object is parsed once.
    Planning writes into the views' calendars: they are used up, give them to one plan only.
    """
    decisions: list[Decision] = []
    problems: list[Problem] = []
    due = 0
    for obj in objects:
        decision, count, found = _plan_one(obj, knowledge, (views or {}).get(obj.href))
        decisions.append(decision)
        problems.extend(p for p in found if p not in problems)
        due += count
    return SyncPlan(tuple(decisions), due, tuple(problems))
