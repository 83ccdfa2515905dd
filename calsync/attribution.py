"""Usage records → actuals per session occurrence (pure).

The rules (spec, "Where usage comes from and where it goes"):

- a usage record belongs to an occurrence whose window [start, end) contains its
  timestamp and whose project matches the record's working directory;
- project match: the last path component of the record's `cwd` equals the occurrence's
  X-CLAUDE-PROJECT, case-insensitively. When the config gives the project `paths`, those
  working-directory prefixes are the match instead of the name. When it gives only the
  repository `path`, a `cwd` inside that repository matches as well as the name;
- an occurrence without a project takes records of any project;
- a cancelled occurrence takes nothing;
- no record is counted twice: where eligible windows overlap, the occurrence that started
  last takes it (equal starts: the one naming a project, then the smaller UID).

Tokens counted against the budget are input + output + cache creation, plus cache reads
only when `count_cache_reads` is set; the per-family counts use the same rule.

Cost is the sum over the records: a record's own `cost_usd` when its source knew it,
else the price table's. A record whose model has no price adds nothing and its model is
listed in the result's `unpriced_models` so the caller can warn, naming it; `cost_usd` is
None only when an occurrence has records and not one of them has a price. An occurrence
with no records costs 0.

Git statistics are not computed here (`Actuals.git` is None): the caller adds them from
`sources.git`, which is I/O.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import attrgetter

from .config import ProjectSettings
from .model import (
    Actuals,
    Budget,
    Family,
    Occurrence,
    Status,
    UsageRecord,
    normal_path,
    path_under,
    project_dir,
)
from .pricing import PriceTable

OccurrenceKey = tuple[str, datetime | date | None]
"""(UID, RECURRENCE-ID) of an occurrence: RECURRENCE-ID is None for a single event."""

_CENTS = Decimal("0.0001")


def key_of(occurrence: Occurrence) -> OccurrenceKey:
    return (occurrence.uid, occurrence.recurrence_id)


class Attribution(dict[OccurrenceKey, Actuals]):
    """Actuals per occurrence (a plain dict), plus `unpriced_models`: per occurrence, the
    model ids whose records had no price, so the caller can warn, naming them."""

    def __init__(self, actuals: Mapping[OccurrenceKey, Actuals],
                 unpriced_models: Mapping[OccurrenceKey, tuple[str, ...]]) -> None:
        super().__init__(actuals)
        self.unpriced_models = dict(unpriced_models)


class _ProjectMatcher:
    """Decides whether a record's working directory belongs to a project (cached)."""

    def __init__(self, projects: Mapping[str, ProjectSettings] | None) -> None:
        self._settings = {name.lower(): s for name, s in (projects or {}).items()}
        self._cache: dict[tuple[str, str | None], bool] = {}

    def matches(self, project: str | None, cwd: str | None) -> bool:
        if project is None:
            return True
        key = (project, cwd)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._decide(project.lower(), cwd)
        return hit

    def _decide(self, project: str, cwd: str | None) -> bool:
        if not cwd:
            return False
        where = normal_path(cwd)
        settings = self._settings.get(project)
        if settings is not None and settings.paths:
            return any(path_under(where, normal_path(p)) for p in settings.paths)
        if project_dir(where).lower() == project:
            return True
        return bool(settings and settings.path
                    and path_under(where, normal_path(str(settings.path))))


def _claim_order(occurrence: Occurrence) -> tuple[float, bool, str]:
    """Sort key: who claims a contested record first (latest start, a project, smaller UID)."""
    return (-occurrence.start.timestamp(), occurrence.plan.project is None, occurrence.uid)


def assign_records(
    occurrences: Sequence[Occurrence],
    records: Iterable[UsageRecord],
    *,
    projects: Mapping[str, ProjectSettings] | None = None,
) -> dict[OccurrenceKey, list[UsageRecord]]:
    """Each record to at most one occurrence, by the module's rules; every key present.

    Records are sorted once by time; each eligible occurrence, latest start first, takes
    the unclaimed records in its window (found by bisection) whose project matches.
    """
    ordered = sorted(records, key=attrgetter("timestamp"))
    times = [r.timestamp for r in ordered]
    claimed = bytearray(len(ordered))
    matcher = _ProjectMatcher(projects)
    result: dict[OccurrenceKey, list[UsageRecord]] = {key_of(o): [] for o in occurrences}
    eligible = [o for o in occurrences if not o.cancelled and o.end > o.start]
    for occurrence in sorted(eligible, key=_claim_order):
        taken = result[key_of(occurrence)]
        project = occurrence.plan.project
        for i in range(bisect_left(times, occurrence.start), bisect_left(times, occurrence.end)):
            if not claimed[i] and matcher.matches(project, ordered[i].cwd):
                claimed[i] = 1
                taken.append(ordered[i])
    return result


def status_of(occurrence: Occurrence, tokens_total: int, budget: Budget, now: datetime) -> Status:
    """The status an occurrence has at `now`, given the tokens counted in it."""
    if occurrence.cancelled:
        return Status.CANCELLED
    if now < occurrence.start:
        return Status.PLANNED
    if now < occurrence.end:
        return Status.IN_PROGRESS
    if tokens_total <= 0:
        return Status.MISSED
    if budget.total is not None and tokens_total > budget.total:
        return Status.OVER_BUDGET
    return Status.COMPLETED


def budget_used_percent(tokens_total: int, budget: Budget) -> int | None:
    """Percent of the total budget used, rounded half up; None without a positive budget."""
    if not budget.total or budget.total <= 0:
        return None
    return (tokens_total * 100 + budget.total // 2) // budget.total


def counted_tokens(record: UsageRecord, *, count_cache_reads: bool) -> int:
    """Tokens of one record counted against the budget (the spec's counting rule)."""
    counted = record.input_tokens + record.output_tokens + record.cache_creation_tokens
    return counted + record.cache_read_tokens if count_cache_reads else counted


def record_cost(record: UsageRecord, prices: PriceTable | None) -> float | None:
    if record.cost_usd is not None:
        return record.cost_usd
    if prices is None:
        return None
    return prices.cost(record.model, record.input_tokens, record.output_tokens,
                       record.cache_creation_5m_tokens, record.cache_creation_1h_tokens,
                       record.cache_read_tokens)


def summarize(
    occurrence: Occurrence,
    records: Sequence[UsageRecord],
    *,
    count_cache_reads: bool,
    prices: PriceTable | None,
    now: datetime,
) -> tuple[Actuals, tuple[str, ...]]:
    """Actuals of one occurrence from its records, and the models that had no price."""
    per_family = dict.fromkeys(Family, 0)
    costs: list[float] = []
    unpriced: set[str] = set()
    for record in records:
        per_family[record.family] += counted_tokens(record, count_cache_reads=count_cache_reads)
        cost = record_cost(record, prices)
        if cost is None:
            unpriced.add(record.model)
        else:
            costs.append(cost)
    total = sum(per_family.values())
    budget = occurrence.plan.budget
    actuals = Actuals(
        tokens_total=total,
        tokens_opus=per_family[Family.OPUS],
        tokens_sonnet=per_family[Family.SONNET],
        tokens_haiku=per_family[Family.HAIKU],
        tokens_other=per_family[Family.OTHER],
        input_tokens=sum(r.input_tokens for r in records),
        output_tokens=sum(r.output_tokens for r in records),
        cache_creation_tokens=sum(r.cache_creation_tokens for r in records),
        cache_read_tokens=sum(r.cache_read_tokens for r in records),
        cost_usd=_decimal(math.fsum(costs)) if costs or not records else None,
        budget_used_percent=budget_used_percent(total, budget),
        status=status_of(occurrence, total, budget, now),
        actual_start=min((r.timestamp for r in records), default=None),
        actual_end=max((r.timestamp for r in records), default=None),
        session_ids=tuple(sorted({r.session_id for r in records})),
    )
    return _utc_times(actuals), tuple(sorted(unpriced))


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(_CENTS)


def _utc_times(actuals: Actuals) -> Actuals:
    start, end = actuals.actual_start, actuals.actual_end
    if start is None or end is None:
        return actuals
    return actuals.model_copy(
        update={"actual_start": start.astimezone(UTC), "actual_end": end.astimezone(UTC)})


def attribute(
    occurrences: Sequence[Occurrence],
    records: Iterable[UsageRecord],
    *,
    projects: Mapping[str, ProjectSettings] | None,
    count_cache_reads: bool,
    prices: PriceTable | None,
    now: datetime,
) -> Attribution:
    """Actuals (status and budget use included, git left None) for every occurrence."""
    assigned = assign_records(occurrences, records, projects=projects)
    actuals: dict[OccurrenceKey, Actuals] = {}
    unpriced: dict[OccurrenceKey, tuple[str, ...]] = {}
    for occurrence in occurrences:
        key = key_of(occurrence)
        actuals[key], missing = summarize(
            occurrence, assigned[key], count_cache_reads=count_cache_reads, prices=prices,
            now=now)
        if missing:
            unpriced[key] = missing
    return Attribution(actuals, unpriced)
