"""One sync run, end to end: the I/O around the planner and the engine.

`run_sync(settings, env, request)`:

1. takes the run lock (`sync.lock` in the state dir; a second run gets `LockedError`);
2. opens the calendar and reads its objects: an .ics file in one read; a CalDAV collection
   incrementally (RFC 6578 sync-collection from the token of the last run, then one
   multiget of the objects whose etag changed; texts come from the state database
   otherwise; a refused token falls back to a fresh sync, then to an etag listing);
3. reads the session occurrences of the window, the usage records (the ledger, which reads
   only what is new in the logs) and the git statistics of projects with a `path`;
4. plans (`planner.plan_sync`) and applies (`engine.apply`), recording after each write
   what was written: the etag and text, and the plans of overrides calsync wrote.

An idle run against CalDAV (nothing changed on the server, no new usage) therefore costs
one sync-collection REPORT (two with the first 401 of an auth negotiation).

Tables (migration 2 in `state.py`): `sync_collection` (the sync token per calendar),
`sync_object` (etag and text per href; text NULL for an object holding no session),
`sync_override` (the plan hash calsync last wrote into each override).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time as clock
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path

from . import paths
from .attribution import OccurrenceKey, attribute, key_of
from .backends import Backend, open_backend
from .config import Settings
from .engine import RetryPolicy, SyncReport, apply
from .errors import ConfigError, LockedError, ServerError, SyncTokenInvalid
from .files import try_lock
from .model import Actuals, CalendarObject, GitStats, Occurrence
from .planner import (
    Knowledge,
    Views,
    WriteObject,
    may_hold_sessions,
    plan_object,
    plan_sync,
    read_views,
    sessions_in,
)

LOCK_NAME = "sync.lock"
DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class SyncRequest:
    """What to sync: where, which window, the clock and zone, and whether to write."""

    location: str
    start: datetime
    end: datetime
    now: datetime
    tz: tzinfo
    dry_run: bool = False
    logs: Sequence[Path] = ()


def sync_request(location: str, settings: Settings, tz: tzinfo, *, first: date | None,
                 last: date | None, dry_run: bool = False, logs: Sequence[Path] = (),
                 now: datetime | None = None) -> SyncRequest:
    """The window of --from/--to (days in `tz`, both included), else window_days back to now."""
    now = now or datetime.now(tz)
    start = (datetime.combine(first, time(), tz) if first
             else now - timedelta(days=settings.sync.window_days))
    end = datetime.combine(last + timedelta(days=1), time(), tz) if last else now
    if end <= start:
        raise ConfigError(f"the window ends ({end:%Y-%m-%d}) before it starts "
                          f"({start:%Y-%m-%d})", key="--to")
    return SyncRequest(location, start, end, now, tz, dry_run, tuple(logs))


@dataclass(frozen=True)
class SyncResult:
    report: SyncReport
    warnings: tuple[str, ...] = ()
    requests: int | None = None   # HTTP requests sent, for a CalDAV calendar


@dataclass
class _Cache:
    """What the state database remembers of one calendar."""

    token: str | None
    objects: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


# --- the lock ------------------------------------------------------------------------------


@contextlib.contextmanager
def run_lock(state_dir: Path) -> Iterator[None]:
    """Hold `sync.lock` for the run; `LockedError` when another run holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not try_lock(fd):
            raise LockedError(str(path))
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process is killed


# --- the state database ---------------------------------------------------------------------


class SyncState:
    """The sync tables of the state database, for one calendar (`location`)."""

    def __init__(self, conn: sqlite3.Connection, location: str) -> None:
        self.conn, self.location = conn, location

    def load(self) -> _Cache:
        row = self.conn.execute("SELECT token FROM sync_collection WHERE location = ?",
                                (self.location,)).fetchone()
        cache = _Cache(row[0] if row else None)
        for href, etag, text in self.conn.execute(
                "SELECT href, etag, text FROM sync_object WHERE location = ?", (self.location,)):
            cache.objects[href] = (etag, text)
        return cache

    def save_fetch(self, token: str | None, fetched: Sequence[CalendarObject],
                   deleted: Sequence[str]) -> None:
        with self._transaction():
            self.conn.executemany(
                "DELETE FROM sync_object WHERE location = ? AND href = ?",
                [(self.location, href) for href in deleted])
            self.conn.executemany(
                "INSERT OR REPLACE INTO sync_object (location, href, etag, text) "
                "VALUES (?, ?, ?, ?)",
                [(self.location, o.href, o.etag, o.text if may_hold_sessions(o.text) else None)
                 for o in fetched])
            self.conn.execute("INSERT OR REPLACE INTO sync_collection (location, token) "
                              "VALUES (?, ?)", (self.location, token))

    def written_plans(self) -> dict[tuple[str, str], str]:
        return {(href, rid): digest for href, rid, digest in self.conn.execute(
            "SELECT href, recurrence_id, plan_hash FROM sync_override WHERE location = ?",
            (self.location,))}

    def record_write(self, decision: WriteObject, etag: str | None) -> None:
        """After a successful write: its etag, its text, the plans written into overrides."""
        with self._transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO sync_object (location, href, etag, text) "
                "VALUES (?, ?, ?, ?)", (self.location, decision.href, etag, decision.new_text))
            self.conn.executemany(
                "INSERT OR REPLACE INTO sync_override (location, href, recurrence_id, "
                "plan_hash) VALUES (?, ?, ?, ?)",
                [(self.location, decision.href, rid, digest)
                 for rid, digest in decision.plan_hashes])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


# --- reading the calendar -----------------------------------------------------------------


def fetch_objects(backend: Backend, state: SyncState) -> list[CalendarObject]:
    """Every calendar object of the calendar, asking a CalDAV server only for what changed.

    Objects that hold no session come back with empty text: nothing reads them.
    """
    read_all: Callable[[], list[CalendarObject]] | None = getattr(backend, "read_all", None)
    if read_all is not None:  # one .ics file: one read is all there is
        return read_all()
    if not hasattr(backend, "sync_objects"):
        return list(backend.get_many([href for href, _ in backend.list()]))
    cache = state.load()
    changed, deleted, token, complete = _changes(backend, cache.token)
    if complete:  # a full listing: whatever it does not name is gone
        listed = {o.href for o in changed}
        deleted = [href for href in cache.objects if href not in listed]
    stale = [o for o in changed if o.etag is None or o.href not in cache.objects
             or cache.objects[o.href][0] != o.etag]
    missing = [o.href for o in stale if not o.text]  # the server sent no calendar-data
    fetched = [o for o in stale if o.text]
    fetched += list(backend.get_many(missing)) if missing else []
    gone = set(deleted) | ({o.href for o in stale} - {o.href for o in fetched})
    state.save_fetch(token, fetched, sorted(gone))
    objects = {href: CalendarObject(href, etag, text or "")
               for href, (etag, text) in cache.objects.items() if href not in gone}
    objects.update((o.href, o) for o in fetched)
    return list(objects.values())


def _changes(backend: Backend, token: str | None
             ) -> tuple[list[CalendarObject], list[str], str | None, bool]:
    """(changed objects, deleted hrefs, next token, whether `changed` lists everything).

    With a token, only what changed is listed, without texts: most of it is calsync's own
    writes, whose etags the state already knows. Without one (a first run), the texts come
    in the same request; a server that refuses so large a REPORT (Radicale answers 400 past
    its `max_expand_occurrence`) is asked for the listing alone, and the texts follow in
    batched multigets.
    """
    if token is not None:
        try:
            changed, deleted, new_token = backend.sync_changes(token)  # type: ignore[attr-defined]
            return _unread(changed), deleted, new_token, False
        except SyncTokenInvalid:
            pass
    try:
        objects, _deleted, new_token = backend.sync_objects(None)  # type: ignore[attr-defined]
        return objects, [], new_token, True
    except SyncTokenInvalid:
        pass
    except ServerError as exc:
        if exc.status != 400:
            raise
        try:
            changed, _deleted, new_token = backend.sync_changes(None)  # type: ignore[attr-defined]
            return _unread(changed), [], new_token, True
        except SyncTokenInvalid:
            pass
    return _unread(backend.list()), [], None, True


def _unread(listed: Iterable[tuple[str, str | None]]) -> list[CalendarObject]:
    """Listed (href, etag) pairs as objects whose text is still to be fetched ("")."""
    return [CalendarObject(href, etag, "") for href, etag in listed]


# --- usage and git ------------------------------------------------------------------------


def _git_stats(due: Sequence[Occurrence], settings: Settings, warnings: list[str]
               ) -> dict[OccurrenceKey, GitStats]:
    """Git statistics per occurrence of a project with a configured repository path."""
    from .sources.git import load_commits, stats_in

    repos = {name.lower(): p.path for name, p in settings.projects.items() if p.path}
    result: dict[OccurrenceKey, GitStats] = {}
    for project, repo in repos.items():
        mine = [o for o in due if (o.plan.project or "").lower() == project]
        if not mine:
            continue
        commits = load_commits(repo.expanduser(), min(o.start for o in mine),
                               warn=warnings.append)
        if commits is None:
            continue
        for occurrence in mine:
            result[key_of(occurrence)] = stats_in(commits, occurrence.start, occurrence.end)
    return result


def _knowledge(objects: Sequence[CalendarObject], settings: Settings, env: Mapping[str, str],
               request: SyncRequest, location: str, state: SyncState,
               warnings: list[str]) -> tuple[Knowledge, Views]:
    from .ledger import load_usage
    from .pricing import load_prices
    from .usage_config import UsageConfig

    written = state.written_plans()
    views = read_views(objects, start=request.start, end=request.end, tz=request.tz,
                       location=location, written_plans=written)
    occurrences, _problems = sessions_in(views)
    due = [o for o in occurrences if o.start <= request.now]
    actuals: dict[OccurrenceKey, Actuals] = {}
    git: dict[OccurrenceKey, GitStats] = {}
    if due:
        records = load_usage(UsageConfig.of(settings), env, since=min(o.start for o in due),
                             until=max(o.end for o in due), logs=request.logs)
        found = attribute(due, records, projects=settings.projects,
                          count_cache_reads=settings.usage.count_cache_reads,
                          prices=load_prices(settings.prices), now=request.now)
        actuals = dict(found)
        for models in sorted({m for ms in found.unpriced_models.values() for m in ms}):
            warnings.append(f"no price known for model {models}; its cost is left out")
        git = _git_stats(due, settings, warnings)
    knowledge = Knowledge(request.start, request.end, request.now, request.tz, location,
                          actuals, git, written, diffs=request.dry_run)
    return knowledge, views


# --- the run --------------------------------------------------------------------------------


def run_sync(settings: Settings, env: Mapping[str, str], request: SyncRequest, *,
             backend: Backend | None = None, policy: RetryPolicy = DEFAULT_POLICY,
             sleep: Callable[[float], None] = clock.sleep) -> SyncResult:
    """Sync one calendar; see the module docstring for the steps."""
    from .state import open_state

    state_dir = paths.state_dir(settings.state_dir, env)
    with run_lock(state_dir):
        opened = backend is None
        if backend is None:
            backend = open_backend(request.location, settings=settings, env=env)
        conn = open_state(state_dir)
        try:
            state = SyncState(conn, backend.location)
            warnings: list[str] = []
            objects = fetch_objects(backend, state)
            knowledge, views = _knowledge(objects, settings, env, request, backend.location,
                                          state, warnings)
            plan = plan_sync(objects, knowledge, views)
            report = apply(plan, backend, replan=lambda obj: plan_object(obj, knowledge),
                           on_written=state.record_write, dry_run=request.dry_run,
                           policy=policy, sleep=sleep)
        finally:
            conn.close()
            close = getattr(backend, "close", None)
            if opened and close is not None:
                close()
    return SyncResult(report, tuple(warnings), getattr(backend, "requests", None))
