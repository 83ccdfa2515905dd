"""Schedule files: the shipped presets in `templates/`, or a person's own TOML file.

A schedule says which sessions happen on which weekdays at which times, in which weeks
(phases), with which session type, budget and goals. `templates/README.md` documents the
format for people; this module turns the text into frozen values or one `TemplateError`
naming the file and every broken key (keys count list items from 1: `phases[2].sessions[1].day`).

`parse_schedule` is pure (text in, values out). `load_*` read the files shipped in the
package (`calsync.templates`, via importlib.resources, so they work from a wheel) or a path.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime, time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import TemplateError
from .model import Budget

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SESSION_TYPES_FILE = "session-types.toml"
_TEMPLATES = "calsync.templates"
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SessionType(_Frozen):
    """A kind of session: what it is called, its budget, its model and its checklists."""

    key: str
    name: str
    primary_model: str | None = None
    framework: str | None = None
    budget: Budget = Budget()
    cost_budget_usd: Decimal | None = None
    activities: tuple[str, ...] = ()
    goals: tuple[str, ...] = ()
    success_criteria: tuple[str, ...] = ()
    deliverables: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class Slot(_Frozen):
    """One session a week: a weekday (0 = Monday), local start and end, and its type."""

    day: int
    start: time
    end: time
    session: SessionType


class Phase(_Frozen):
    """Slots that repeat every week from `first_week` to `last_week` (None: to the end)."""

    name: str
    first_week: int = 1
    last_week: int | None = None
    slots: tuple[Slot, ...]


class Schedule(_Frozen):
    """A whole schedule. `name` is part of every event's UID."""

    name: str
    description: str = ""
    project: str | None = None
    timezone: str | None = None
    weeks: int | None = None
    phases: tuple[Phase, ...]

    @property
    def planned_weeks(self) -> int | None:
        """The last week any phase plans, or None when a phase runs to the end."""
        lasts = [p.last_week for p in self.phases]
        return None if None in lasts else max(w for w in lasts if w is not None)


# --- the raw TOML shape, validated with pydantic -------------------------------------------

class _RawBudget(_Frozen):
    total: StrictInt | None = Field(None, ge=0)
    opus: StrictInt | None = Field(None, ge=0)
    sonnet: StrictInt | None = Field(None, ge=0)
    haiku: StrictInt | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _shares_fit(self) -> _RawBudget:
        shares = sum(v or 0 for v in (self.opus, self.sonnet, self.haiku))
        if self.total is not None and shares > self.total:
            raise ValueError(f"opus + sonnet + haiku = {shares} tokens, above total {self.total}")
        return self

    def to_budget(self) -> Budget:
        shares = [v for v in (self.opus, self.sonnet, self.haiku) if v is not None]
        total = self.total if self.total is not None else (sum(shares) if shares else None)
        return Budget(total=total, opus=self.opus, sonnet=self.sonnet, haiku=self.haiku)


class _RawTypeFields(_Frozen):
    name: str | None = None
    primary_model: str | None = None
    framework: str | None = None
    budget: _RawBudget | None = None
    cost_budget_usd: Decimal | None = Field(None, ge=0)
    activities: tuple[str, ...] | None = None
    goals: tuple[str, ...] | None = None
    success_criteria: tuple[str, ...] | None = None
    deliverables: tuple[str, ...] | None = None
    notes: tuple[str, ...] | None = None


class _RawSlot(_RawTypeFields):
    day: int
    start: time
    end: time
    type: str | None = None

    @field_validator("day", mode="before")
    @classmethod
    def _day(cls, value: Any) -> int:
        if isinstance(value, str):
            word = value.strip().lower()
            for number, day in enumerate(WEEKDAYS):
                if len(word) >= 2 and day.startswith(word):
                    return number
        raise ValueError(f"unknown day {value!r}; use monday, tuesday, ... sunday")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: Any) -> time:
        if isinstance(value, time) and value.tzinfo is None:
            return value
        match = _TIME.match(value.strip()) if isinstance(value, str) else None
        if not match:
            raise ValueError(f"{value!r} is not a time like \"14:00\"")
        return time(int(match[1]), int(match[2]))

    @field_validator("end")
    @classmethod
    def _ends_after_start(cls, end: time, info: ValidationInfo) -> time:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError(f"{end:%H:%M} is not after start {start:%H:%M} "
                             "(a session ends on the day it starts)")
        return end


class _RawPhase(_Frozen):
    name: str | None = None
    weeks: tuple[int, int | None] = (1, None)
    sessions: tuple[_RawSlot, ...] = Field(min_length=1)

    @field_validator("weeks", mode="before")
    @classmethod
    def _weeks(cls, value: Any) -> tuple[int, int]:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value, value]
        if (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                and 1 <= value[0] <= value[1]):
            return (value[0], value[1])
        raise ValueError(f"{value!r} is not a week number or a range like [2, 5] (from 1)")


class _RawSchedule(_Frozen):
    name: str | None = None
    description: str = ""
    project: str | None = None
    timezone: str | None = None
    weeks: StrictInt | None = Field(None, ge=1)
    types: dict[str, _RawTypeFields] = Field(default_factory=dict)
    sessions: tuple[_RawSlot, ...] | None = None
    phases: tuple[_RawPhase, ...] | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    @model_validator(mode="after")
    def _sessions_or_phases(self) -> _RawSchedule:
        if (self.sessions is None) == (self.phases is None):
            raise ValueError("give either [[sessions]] (every week) or [[phases]], not both")
        return self


# --- from raw to values ---------------------------------------------------------------------

def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError (with the reason) when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name like Europe/Berlin") \
            from None


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "missing",
    "int_type": "not a whole number: {input!r}",
    "int_parsing": "not a whole number: {input!r}",
    "string_type": "not a text in quotes: {input!r}",
    "tuple_type": "not a list like [\"a\", \"b\"]: {input!r}",
    "dict_type": "not a table: {input!r}",
    "model_type": "not a table: {input!r}",
}


def _message(err: Mapping[str, Any]) -> str:
    template = _MESSAGES.get(err["type"])
    if template:
        return template.format(input=err.get("input"))
    return str(err["msg"]).removeprefix("Value error, ")


def _session_type(key: str, raw: _RawTypeFields, base: SessionType | None) -> SessionType:
    """`raw`'s fields laid over `base` (a whole budget replaces the base's budget)."""
    values: dict[str, Any] = base.model_dump() if base else {"key": key, "name": key}
    values["key"] = key
    for field in raw.model_fields_set & set(_RawTypeFields.model_fields):
        value = getattr(raw, field)
        if value is not None:
            values[field] = value.to_budget() if isinstance(value, _RawBudget) else value
    return SessionType.model_validate(values)


def _phase(raw: _RawPhase, index: int, prefix: str, types: Mapping[str, SessionType],
           problems: list[str]) -> Phase:
    slots = []
    for number, slot in enumerate(raw.sessions):
        where = f"{prefix}sessions[{number + 1}]"
        base = types.get(slot.type) if slot.type else None
        if slot.type and base is None:
            problems.append(f"{where}.type: unknown session type {slot.type!r} "
                            f"(known: {', '.join(sorted(types))})")
            continue
        if base is None and slot.name is None:
            problems.append(f"{where}: give a type or a name")
            continue
        key = slot.type or re.sub(r"[^a-z0-9]+", "-", (slot.name or "").lower()).strip("-")
        session = _session_type(key, slot, base)
        slots.append(Slot(day=slot.day, start=slot.start, end=slot.end, session=session))
    return Phase(name=raw.name or f"Phase {index + 1}", first_week=raw.weeks[0],
                 last_week=raw.weeks[1], slots=tuple(slots))


def _validate(raw: Any, path: str) -> _RawSchedule:
    try:
        return _RawSchedule.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_key(e['loc'])}: {_message(e)}" if e["loc"] else _message(e)
                    for e in exc.errors()]
        raise TemplateError("; ".join(problems), path=path) from None


def parse_schedule(
    text: str, *, path: str, default_name: str, shipped_types: Mapping[str, SessionType],
) -> Schedule:
    """A Schedule from TOML text; one TemplateError listing every problem with file and key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"not valid TOML: {exc}", path=path) from None
    raw = _validate(data, path)
    types = dict(shipped_types)
    for key, fields in raw.types.items():
        types[key] = _session_type(key, fields, types.get(key))
    raw_phases = raw.phases if raw.phases is not None else (
        _RawPhase(name=None, sessions=raw.sessions or ()),)
    problems: list[str] = []
    prefix = "phases[{}]." if raw.phases is not None else ""
    phases = tuple(_phase(p, i, prefix.format(i + 1), types, problems)
                   for i, p in enumerate(raw_phases))
    if problems:
        raise TemplateError("; ".join(problems), path=path)
    if raw.phases is None:
        phases = (phases[0].model_copy(update={"name": "Every week"}),)
    return Schedule(name=raw.name or default_name, description=raw.description,
                    project=raw.project, timezone=raw.timezone, weeks=raw.weeks, phases=phases)


def parse_session_types(text: str, *, path: str) -> dict[str, SessionType]:
    """The [types.*] tables of a session-types file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"not valid TOML: {exc}", path=path) from None
    raw = _validate({**data, "sessions": []}, path)
    return {key: _session_type(key, fields, None) for key, fields in raw.types.items()}


# --- the shipped files and a person's file (I/O) --------------------------------------------

def _shipped(name: str) -> str:
    return resources.files(_TEMPLATES).joinpath(name).read_text("utf-8")


def load_session_types() -> dict[str, SessionType]:
    return parse_session_types(_shipped(SESSION_TYPES_FILE), path=SESSION_TYPES_FILE)


def list_presets() -> list[str]:
    """The names of the shipped presets, sorted."""
    files = resources.files(_TEMPLATES).iterdir()
    return sorted(f.name.removesuffix(".toml") for f in files
                  if f.name.endswith(".toml") and f.name != SESSION_TYPES_FILE)


def load_preset(name: str) -> Schedule:
    presets = list_presets()
    if name not in presets:
        raise TemplateError(f"unknown preset {name!r}; choose from {', '.join(presets)}",
                            key="--preset", hint="calsync template --list shows them")
    return parse_schedule(_shipped(f"{name}.toml"), path=f"templates/{name}.toml",
                          default_name=name, shipped_types=load_session_types())


def load_schedule_file(path: Path) -> Schedule:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError("no such file", path=str(path), key="--schedule") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read: {exc}", path=str(path)) from None
    return parse_schedule(text, path=str(path), default_name=path.stem,
                          shipped_types=load_session_types())


# --- what the command line adds to a schedule -----------------------------------------------

class TemplateOptions(_Frozen):
    """Project, zone and number of weeks, from the flags or else from the schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    project: str
    tz: ZoneInfo
    weeks: int


def resolve_options(
    schedule: Schedule, *, project: str | None, tz: str | None, weeks: int | None,
) -> TemplateOptions:
    """Flags win over the schedule's own `project`, `timezone` and `weeks`."""
    project = (project or schedule.project or "").strip()
    if not project:
        raise TemplateError("needed: the project the sessions are for", key="--project",
                            hint="or set project = \"...\" in the schedule file")
    name = tz or schedule.timezone
    if not name:
        raise TemplateError("needed: the time zone of the sessions, e.g. America/New_York",
                            key="--tz", hint="or set timezone = \"...\" in the schedule file")
    try:
        zoneinfo = zone(name)
    except ValueError as exc:
        raise TemplateError(str(exc), key="--tz") from None
    count = weeks or schedule.weeks or schedule.planned_weeks
    if count is None:
        raise TemplateError("needed: how many weeks to plan", key="--weeks",
                            hint="or set weeks = N in the schedule file")
    return TemplateOptions(project=project, tz=zoneinfo, weeks=count)


def load_schedule(*, preset: str | None, path: Path | None) -> Schedule:
    """The schedule of `--schedule FILE`, or the preset (weekly when neither is given)."""
    if preset and path:
        raise TemplateError("give --preset or --schedule, not both", key="--schedule")
    return load_schedule_file(path) if path else load_preset(preset or "weekly")


def parse_dtstamp(text: str | None, *, default: datetime) -> datetime:
    """`--dtstamp` as an aware datetime (a time without offset is UTC); `default` if None."""
    if text is None:
        return default
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TemplateError(f"{text!r} is not an ISO 8601 date-time like 2026-11-01T00:00:00Z",
                            key="--dtstamp") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
