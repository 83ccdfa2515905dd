"""Usage report rows from ledger buckets: by day, week, month, session, project or model (pure).

The ledger sums usage records per 15-minute bucket (UTC), model, session and working
directory; every real time zone offset is a multiple of 15 minutes, so each bucket falls on
one local day in any zone and days, weeks and months come out exact.

Row shapes (the `--json` output; tables show the same columns):

day      {date, model, input_tokens, output_tokens, cache_creation_tokens,
          cache_read_tokens, total_tokens, cost_usd}: one per local date and model
week     the same with `week` (the Monday starting the ISO week) instead of `date`
month    the same with `month` (YYYY-MM)
model    {model, family, records, <four counts>, total_tokens, cost_usd}
project  {project, sessions, records, manual_records, <four counts>, total_tokens, cost_usd}
session  {session_id, project, first_at, last_at, models, records, manual, <four counts>,
          total_tokens, cost_usd}

`total_tokens` is the sum of the four counts (as ccusage's). `cost_usd` is null when any
record in the row has no known price. Manual records (`calsync log`) are marked: their model
reads `<model> (manual)`, their session `manual`, and `manual`/`manual_records` say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from .records import Family, normal_path, path_under, project_dir

GROUPINGS = ("day", "week", "month", "session", "project", "model")
COUNTS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
MANUAL = " (manual)"


class Bucket(NamedTuple):
    """Usage records summed over one 15-minute bucket, model, session and working dir."""

    start_us: int                 # UTC, microseconds since the epoch
    model: str
    session_id: str
    cwd: str
    manual: bool
    records: int
    input_tokens: int
    output_tokens: int
    cache_creation_5m_tokens: int
    cache_creation_1h_tokens: int
    cache_read_tokens: int
    cost_usd: float | None        # None when a record in it has no known price
    first_us: int
    last_us: int


def project_of(cwd: str, projects: Mapping[str, Sequence[str]] | None = None) -> str:
    """The project of a working directory: the configured one whose paths hold it, else the
    last path component ("" when there is none)."""
    path = normal_path(cwd)
    for name, paths in (projects or {}).items():
        if any(path_under(path, normal_path(root)) for root in paths):
            return name
    return project_dir(cwd)


def _moment(us: int, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC).astimezone(tz)


class _Acc:
    __slots__ = ("cost", "counts", "first", "last", "manual", "models", "priced", "records",
                 "sessions")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0]
        self.cost = 0.0
        self.priced = True
        self.records = 0
        self.manual = 0
        self.first = 1 << 62
        self.last = 0
        self.models: set[str] = set()
        self.sessions: set[str] = set()

    def add(self, b: Bucket) -> None:
        c = self.counts
        c[0] += b.input_tokens
        c[1] += b.output_tokens
        c[2] += b.cache_creation_5m_tokens + b.cache_creation_1h_tokens
        c[3] += b.cache_read_tokens
        if b.cost_usd is None:
            self.priced = False
        else:
            self.cost += b.cost_usd
        self.records += b.records
        self.manual += b.records if b.manual else 0
        self.first = min(self.first, b.first_us)
        self.last = max(self.last, b.last_us)
        self.models.add(b.model)
        self.sessions.add(b.session_id)

    def numbers(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(zip(COUNTS, self.counts, strict=True))
        out["total_tokens"] = sum(self.counts)
        out["cost_usd"] = round(self.cost, 9) if self.priced else None
        return out


def _period(by: str, day: date) -> tuple[str, str]:
    if by == "week":
        return "week", (day - timedelta(days=day.weekday())).isoformat()
    if by == "month":
        return "month", f"{day.year:04d}-{day.month:02d}"
    return "date", day.isoformat()


def report_rows(
    buckets: Iterable[Bucket], *, by: str, tz: tzinfo, since: date | None = None,
    until: date | None = None, project: str | None = None,
    projects: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Group buckets into report rows (module docstring); `since`/`until` are local dates,
    both included; `project` keeps one project (case-insensitive)."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}")
    days: dict[int, date] = {}
    groups: dict[tuple[str, ...], _Acc] = {}
    wanted = project.lower() if project else None
    for b in buckets:
        day = days.get(b.start_us)
        if day is None:
            day = days[b.start_us] = _moment(b.start_us, tz).date()
        if (since and day < since) or (until and day > until):
            continue
        proj = project_of(b.cwd, projects)
        if wanted is not None and proj.lower() != wanted:
            continue
        model = b.model + MANUAL if b.manual else b.model
        if by in ("day", "week", "month"):
            key: tuple[str, ...] = (_period(by, day)[1], model)
        elif by == "model":
            key = (model,)
        elif by == "project":
            key = (proj,)
        else:
            key = ("manual" if b.manual else b.session_id, proj)
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = _Acc()
        acc.add(b)
    return [_row(by, key, acc, tz) for key, acc in sorted(groups.items(), key=_order(by))]


def _order(by: str) -> Any:
    if by == "session":
        return lambda item: (item[1].first, item[0])
    return lambda item: item[0]


def _row(by: str, key: tuple[str, ...], acc: _Acc, tz: tzinfo) -> dict[str, Any]:
    if by in ("day", "week", "month"):
        name = "date" if by == "day" else by
        return {name: key[0], "model": key[1], **acc.numbers()}
    if by == "model":
        return {"model": key[0], "family": Family.of(key[0]).value, "records": acc.records,
                **acc.numbers()}
    if by == "project":
        return {"project": key[0], "sessions": len(acc.sessions), "records": acc.records,
                "manual_records": acc.manual, **acc.numbers()}
    return {"session_id": key[0], "project": key[1],
            "first_at": _moment(acc.first, tz).isoformat(timespec="seconds"),
            "last_at": _moment(acc.last, tz).isoformat(timespec="seconds"),
            "models": sorted(acc.models), "records": acc.records, "manual": acc.manual > 0,
            **acc.numbers()}


def totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of report rows: four counts, total tokens, cost (None if any row has none)."""
    out: dict[str, Any] = dict.fromkeys((*COUNTS, "total_tokens"), 0)
    cost: float | None = 0.0
    for row in rows:
        for name in (*COUNTS, "total_tokens"):
            out[name] += row[name]
        cost = None if cost is None or row["cost_usd"] is None else cost + row["cost_usd"]
    out["cost_usd"] = round(cost, 9) if cost is not None else None
    return out


def parse_day(text: str) -> date:
    """A report date: YYYY-MM-DD or YYYYMMDD (as ccusage takes it)."""
    text = text.strip()
    if len(text) == 8 and text.isdigit():
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return date.fromisoformat(text)
