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


class Family(StrEnum):
    """A model family, from the model id: a name containing opus, sonnet or haiku."""

    OPUS = "opus"
    SONNET = "sonnet"
    HAIKU = "haiku"
    OTHER = "other"

    @classmethod
    def of(cls, model: str | None) -> Family:
        name = (model or "").lower()
        for family in (cls.OPUS, cls.SONNET, cls.HAIKU):
            if family.value in name:
                return family
        return cls.OTHER


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
class UsageRecord:
    """One de-duplicated Claude Code assistant message.

    A dataclass rather than a pydantic model: a year of logs holds millions of these and
    they are built in the scanner's hot loop. `timestamp` is UTC-aware.
    """

    timestamp: datetime
    session_id: str
    cwd: str | None
    git_branch: str | None
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_5m_tokens: int = 0
    cache_creation_1h_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = None
    message_id: str | None = None   # as read from a line; the ledger keeps ids only as keys,
    request_id: str | None = None   # so records read back from it carry None
    manual: bool = False
    note: str | None = None

    @property
    def family(self) -> Family:
        return Family.of(self.model)

    @property
    def cache_creation_tokens(self) -> int:
        return self.cache_creation_5m_tokens + self.cache_creation_1h_tokens

    @property
    def total_tokens(self) -> int:
        """All four counts, as ccusage's `totalTokens`."""
        return (self.input_tokens + self.output_tokens + self.cache_creation_tokens
                + self.cache_read_tokens)

    @property
    def project(self) -> str | None:
        """The last path component of the working directory."""
        return (project_dir(self.cwd) or None) if self.cwd else None


def normal_path(path: str) -> str:
    """A working directory as compared everywhere: forward slashes, no trailing one."""
    return path.replace("\\", "/").rstrip("/")


def project_dir(cwd: str) -> str:
    """The project a working directory names by default: its last path component."""
    return normal_path(cwd).rsplit("/", 1)[-1]


def path_under(path: str, prefix: str) -> bool:
    """Whether normal path `path` is `prefix` or inside it."""
    return bool(prefix) and (path == prefix or path.startswith(prefix + "/"))


@dataclass(frozen=True, slots=True)
class CalendarObject:
    """One calendar object: where it lives, its version, its text."""

    href: str
    etag: str | None
    text: str
