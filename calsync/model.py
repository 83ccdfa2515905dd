"""The values calsync works with, and the words for them.

Glossary (RFC 5545/4791 and `session-events.md`, one meaning each):

calendar object
    One href on a server (or one .ics file), one etag, one VCALENDAR text. It may hold a
    recurring master VEVENT and its overrides. The unit of writing.
occurrence
    One instance of a session: a single event, or one instance of a recurring series.
    The unit of attribution.
override
    A VEVENT with a RECURRENCE-ID: one occurrence of a series stored on its own.
plan
    What a person (or a template) wrote: budget, model, project, goals. Only read by sync.
actuals
    What calsync measured and writes back: tokens, cost, status. Owned by calsync.
usage record
    One de-duplicated Claude Code assistant message (one API call) with its final usage.

Every value here is immutable; edits return new values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

# The usage record and the words it needs live in `calsync.records`, which imports no
# pydantic (the scanner, the ledger and `calsync usage` need them, not the calendar models);
# they belong to this glossary too.
from .records import Family as Family
from .records import UsageRecord as UsageRecord
from .records import normal_path as normal_path
from .records import path_under as path_under
from .records import project_dir as project_dir


class Status(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    OVER_BUDGET = "over-budget"
    MISSED = "missed"
    CANCELLED = "cancelled"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Budget(_Frozen):
    """Token budget of a session, in total and per model family (None: not planned)."""

    total: int | None = None
    opus: int | None = None
    sonnet: int | None = None
    haiku: int | None = None

    def for_family(self, family: Family) -> int | None:
        return None if family is Family.OTHER else getattr(self, family.value)


class Goal(_Frozen):
    text: str
    done: bool = False


class SessionPlan(_Frozen):
    """The plan of one session, as read from X-CLAUDE-* properties and the DESCRIPTION."""

    project: str | None = None
    session_type: str | None = None
    framework: str | None = None
    primary_model: str | None = None
    budget: Budget = Budget()
    cost_budget_usd: Decimal | None = None
    goals: tuple[Goal, ...] = ()
    success_criteria: tuple[str, ...] = ()
    deliverables: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class GitStats(_Frozen):
    commits: int = 0
    files_changed: int = 0
    lines_added: int = 0
    lines_removed: int = 0


class Actuals(_Frozen):
    """What happened in one occurrence. Token counts are sums over its usage records."""

    tokens_total: int = 0          # counted against the budget (see settings: counting rule)
    tokens_opus: int = 0
    tokens_sonnet: int = 0
    tokens_haiku: int = 0
    tokens_other: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: Decimal | None = None
    budget_used_percent: int | None = None
    status: Status = Status.PLANNED
    actual_start: datetime | None = None
    actual_end: datetime | None = None
    session_ids: tuple[str, ...] = ()
    git: GitStats | None = None
    synced_at: datetime | None = None


class Occurrence(_Frozen):
    """One session occurrence in a window, with the plan that applies to it.

    `recurrence_id` is None for a single event; for an instance of a series it is the
    original start (a date for all-day series). `start`/`end` are timezone-aware; floating
    and all-day times are placed in the zone the reader was given.
    """

    uid: str
    recurrence_id: datetime | date | None = None
    start: datetime
    end: datetime
    all_day: bool = False
    summary: str = ""
    plan: SessionPlan = SessionPlan()
    cancelled: bool = False
    href: str | None = None


@dataclass(frozen=True, slots=True)
class CalendarObject:
    """One calendar object: where it lives, its version, its text."""

    href: str
    etag: str | None
    text: str
