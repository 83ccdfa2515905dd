"""The usage ledger: every usage record calsync has counted, kept in the state database.

A run reads only what it has not read. Per transcript file the ledger keeps its identity
(device and inode), size, modification time, the offset just after the last line read, and
hashes of its first and last KiB before that offset. Then, per file found:

- same identity, size and mtime: nothing is read at all (the warm path only stats files);
- grown, with both hashes unchanged: only the new bytes are read;
- truncated, replaced (new inode) or rewritten (a hash differs): what the file contributed is
  dropped and it is read again from the start;
- gone: everything it contributed stays (Claude Code deletes transcripts after 30 days).

The ledger keeps, per file, the best line of each (message.id, requestId, sidechain) and
decides which lines count with ccusage 20's rules, over all files at once:

1. lines with the same message.id and requestId are one API call: the line with the largest
   token total (input + output + cache creation + cache read) counts;
2. a non-sidechain line wins over a sidechain one, whatever the totals;
3. a sidechain line whose message.id is already known (with any requestId) is a replay
   (`/btw`): it does not count; sidechain lines of one message.id count once;
4. a line without message.id always counts.
Ties (a resumed session's copies of old messages) go to a file that does not start with a
`summary` line (it is not a resumed session), then to the file that starts earliest, then to
the first line in path order: the copies stay with the session they happened in.
Because the decision depends only on the lines, not on the order they were read in, an
incremental run gives exactly what a cold run gives. The ledger keeps message.id and
requestId as their 64-bit keys (`calsync.keys`), not as text: a line is found, and told
apart, by its keys. Where a message has exactly one non-sidechain line (the usual case: a
sub-agent's call and the progress line that copies it) rule 2 is applied from the index
alone. Records read back from the ledger carry no message or request ids.

Winners are summed per 15-minute bucket, model, session and working directory in
`usage_agg`, so reports in any time zone never touch the lines. Sessions, directories,
branches and models are kept once, in `usage_name`, and referred to by key. Scopes: each
set of log directories read together is its own ledger, so `--logs elsewhere` never mixes
with the usual logs. Manual records (`calsync log`) belong to every scope.

A run that finds exactly the listing (paths, inodes, sizes, mtimes) the ledger last matched
compares the listing's digest and nothing else: the warm path stats the files and stops.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import marshal
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import LogLineError, NoLogsError
from .records import UsageRecord
from .sources import transcripts
from .state import BUSY_TIMEOUT_MS, unlogged
from .usage import Bucket, report_rows
from .usage_config import UsageConfig

if TYPE_CHECKING:
    from .pricing import PriceTable

BUCKET_US = 900_000_000           # 15 minutes: every real zone offset is a multiple of it
# what each report grouping needs the ledger to keep apart (the rest is summed in SQL)
GROUP_KEYS: dict[str, tuple[str, ...]] = {
    "day": ("day", "model"), "week": ("day", "model"), "month": ("day", "model"),
    "model": ("model",), "project": ("cwd", "session"), "session": ("session", "cwd", "model"),
}
PIECE_BYTES = 16 << 20            # big files are read in pieces of this size, in parallel


@dataclass
class ScanReport:
    files: int = 0
    bytes_read: int = 0
    reread: list[str] = field(default_factory=list)
    problems: list[LogLineError] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


class _FileRow(NamedTuple):
    id: int
    path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    offset: int
    head: bytes | None
    tail: bytes | None
    open_tail: int
    first_ts: int | None
    resumed: int


class _Read(NamedTuple):
    row: _FileRow | None          # None: a new file
    path: str
    stat: transcripts.FileStat
    start: int                    # 0 for new and re-read files


def _worth_a_pool(plan: Sequence[_Read]) -> bool:
    """Enough to read for the scanner processes to pay off."""
    return sum(p.stat[2] - p.start for p in plan) >= 2 * PIECE_BYTES


def _plan_file(row: _FileRow | None, path: str, st: transcripts.FileStat) -> _Read | None:
    """What to read of one file (None: nothing), from its ledger row and its stat."""
    if row is None:
        return _Read(None, path, st, 0)
    if (row.dev, row.ino, row.size, row.mtime_ns) == st:
        return None
    if (row.dev, row.ino) != st[:2] or st[2] < row.offset:
        return _Read(row, path, st, 0)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None                 # gone meanwhile: what it gave is kept
    try:
        from .sources.claude_code import file_hashes  # grown: the scanners come next

        if file_hashes(fd, row.offset) != (row.head, row.tail):
            return _Read(row, path, st, 0)
        if row.open_tail and os.pread(fd, 1, row.offset) not in (b"\n", b""):
            return _Read(row, path, st, 0)  # the "complete" last line went on: rewritten
    except OSError:
        return None
    finally:
        os.close(fd)
    return _Read(row, path, st, row.offset)


class Ledger:
    """The usage ledger of one scope (a set of `projects` dirs) in an open state database."""

    def __init__(self, conn: sqlite3.Connection, dirs: Sequence[Path],
                 prices: PriceTable | Callable[[], PriceTable] | None = None,
                 price_key: str = "") -> None:
        self.conn = conn
        self.dirs = list(dirs)
        self._prices = prices         # a table, or how to load one when first needed
        self.price_key = price_key
        key = "\n".join(sorted(str(d) for d in self.dirs))
        # Written only when new: a run that only reads never waits for another run's write.
        row = conn.execute("SELECT id FROM usage_scope WHERE dirs = ?", (key,)).fetchone()
        if row is None:
            conn.execute("INSERT OR IGNORE INTO usage_scope (dirs) VALUES (?)", (key,))
            row = conn.execute("SELECT id FROM usage_scope WHERE dirs = ?", (key,)).fetchone()
        self.scope = int(row[0])

    @property
    def prices(self) -> PriceTable | None:
        if callable(self._prices):
            self._prices = self._prices()
        return self._prices

    # --- reading the logs ----------------------------------------------------------------
    def _file_rows(self, columns: str, paths: Sequence[str]) -> sqlite3.Cursor:
        """`columns` of the ledger rows of these files: looked up by path when they are few,
        else all of the scope's (one pass is cheaper than hundreds of lookups)."""
        sql = f"SELECT {columns} FROM usage_file WHERE scope = ?"
        if len(paths) > 500:
            return self.conn.execute(sql, (self.scope,))
        return self.conn.execute(f"{sql} AND path IN ({', '.join('?' * len(paths))})",
                                 (self.scope, *paths))

    def _rows(self, paths: Sequence[str]) -> dict[str, _FileRow]:
        """The ledger rows of these files (and perhaps others)."""
        cur = self._file_rows("id, path, dev, ino, size, mtime_ns, offset, head, tail, "
                              "open_tail, first_ts, resumed", paths)
        return {r[1]: _FileRow(*r) for r in cur}

    def update(self, *, workers: int = 0, listing: transcripts.Listing | None = None) -> ScanReport:
        """Read what is new in the logs into the ledger; report what was wrong with them.
        `listing`: the files, found ahead (used when it is of this ledger's directories)."""
        if listing is None or listing.dirs != self.dirs:
            listing = transcripts.Listing(self.dirs)     # found here and now
        first = self.conn.execute("SELECT 1 FROM usage_line LIMIT 1").fetchone() is None
        # A first scan has work for the scanners (else there would be no logs): they start
        # while the files are still being found, not after.
        pool = self._start_pool(workers) if first and listing.pending else None
        try:
            return self._update(listing, first, workers, pool)
        finally:
            if pool is not None:
                pool.terminate()

    def _update(self, listing: transcripts.Listing, first: bool, workers: int,
                pool: Any) -> ScanReport:
        found, unreadable = listing.result()
        report = ScanReport(files=len(found), unreadable=unreadable)
        # A first scan into an empty ledger writes outside the WAL (`unlogged`): switched
        # before the plan is made, as a switch counts as a change in PRAGMA data_version.
        with unlogged(self.conn) if first and found else contextlib.nullcontext(False):
            seen = self._data_version()         # what the plan below is made from
            stale_prices, matched = self._scope_state()
            key = _listing_key(found)
            changed = [] if key == matched else self._changed(found)
            if not changed and key != matched:
                # The files match the ledger: keep their digest, so that the next run that
                # finds the same files compares one digest instead of every file's row.
                self._keep_listing(key)
            plan = self._plan(changed)
            if plan or stale_prices:
                own = pool is None and _worth_a_pool(plan)
                if own:
                    pool = self._start_pool(workers)
                try:
                    self._write(plan, report, workers, stale_prices, pool, seen)
                finally:
                    if own and pool is not None:
                        pool.terminate()
        report.problems = self._problems({path for path, _ in found})
        if not found and not self._has_history():
            raise NoLogsError([str(d) for d in self.dirs])
        return report

    def _write(self, plan: list[_Read], report: ScanReport, workers: int, stale_prices: bool,
               pool: Any, seen: int) -> None:
        """Read the plan into the ledger in one write transaction (`seen`: the data version
        the plan was made from)."""
        from .ledger_write import Writer  # the scanners and msgspec: only when there is work

        self.conn.execute("ATTACH ':memory:' AS scan")     # where scanned lines arrive
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            writer = Writer(self, report)
            try:
                if self._data_version() != seen:    # another run wrote meanwhile: plan again
                    plan = self._plan(self._changed([(p.path, p.stat) for p in plan]))
                writer.run(plan, workers, stale_prices, pool)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            finally:
                if writer.stopping is not None:
                    writer.stopping.join()
        finally:
            self.conn.execute("DETACH scan")

    def _start_pool(self, workers: int) -> Any:
        """Scanner processes (None for one), started now: the parent is still small, and
        what a forked child shares with it stays out of its memory."""
        from .sources import claude_code as cc

        prices = self.prices
        return cc.start_pool(workers or cc.scan_processes(), prices.cost if prices else None)

    def _changed(self, found: Sequence[tuple[str, transcripts.FileStat]]
                 ) -> list[tuple[str, transcripts.FileStat]]:
        """The files whose stat is not their ledger row's (new files included)."""
        if not found:
            return []
        cur = self._file_rows("path, dev, ino, size, mtime_ns", [path for path, _ in found])
        get = {r[0]: r[1:] for r in cur}.get
        return [(path, st) for path, st in found if get(path) != st]

    def _plan(self, changed: list[tuple[str, transcripts.FileStat]]) -> list[_Read]:
        """What to read of the changed files, file by file."""
        if not changed:
            return []
        changed.sort()
        rows = self._rows([path for path, _ in changed])
        return [p for p in (_plan_file(rows.get(path), path, st) for path, st in changed) if p]

    def _data_version(self) -> int:
        """Changes whenever another connection commits to the database."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _keep_listing(self, key: bytes) -> None:
        """Store the listing's digest, unless another run is writing (it is only a shortcut
        for the next run: not worth waiting for)."""
        self.conn.execute("PRAGMA busy_timeout = 0")
        try:
            self.conn.execute("UPDATE usage_scope SET listing = ? WHERE id = ?",
                              (key, self.scope))
        except sqlite3.OperationalError:
            pass
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _scope_state(self) -> tuple[bool, bytes | None]:
        """(the costs were made with other prices, the listing key the ledger last matched)"""
        prices, listing = self.conn.execute("SELECT prices, listing FROM usage_scope WHERE "
                                            "id = ?", (self.scope,)).fetchone()
        return bool(self.price_key) and prices != self.price_key, listing

    def _has_history(self) -> bool:
        return (self.conn.execute("SELECT 1 FROM usage_agg WHERE scope = ? LIMIT 1",
                                  (self.scope,)).fetchone() is not None
                or self.conn.execute("SELECT 1 FROM usage_manual LIMIT 1").fetchone() is not None)

    def _problems(self, present: set[str]) -> list[LogLineError]:
        cur = self.conn.execute(
            "SELECT f.path, p.line, p.message FROM usage_problem p JOIN usage_file f "
            "ON f.id = p.file WHERE f.scope = ? ORDER BY f.path, p.off", (self.scope,))
        return [LogLineError(msg, path=path, line=line) for path, line, msg in cur
                if path in present]

    # --- queries -------------------------------------------------------------------------
    def buckets(self, since_us: int | None = None, until_us: int | None = None, *,
                tz: tzinfo = UTC, keys: Sequence[str] = ("bucket", "model", "session", "cwd"),
                ) -> list[Bucket]:
        """Winners summed per `keys` (and manual records, one bucket each) with timestamps in
        [since_us, until_us). Keys: bucket (15 minutes), day (local day in `tz`), model,
        session, cwd; a key left out is summed over (and reads as "")."""
        lo = (since_us or 0) // BUCKET_US
        hi = -(-until_us // BUCKET_US) if until_us is not None else 1 << 62
        columns = ("model", "session", "cwd")
        group = [k for k in keys if k in columns]
        if "bucket" in keys:
            group.append("bucket")
        elif "day" in keys:
            group.append(f"(bucket * 900 + {self._offset_sql(tz, lo, hi)}) / 86400")
        select = ", ".join(k if k in keys else "0" for k in columns)
        rows = self.conn.execute(
            f"SELECT MIN(bucket), {select}, SUM(n), SUM(inp), SUM(out), SUM(cw5), SUM(cw1), "
            "SUM(cr), TOTAL(cost), SUM(unpriced), MIN(first_ts), MAX(last_ts) FROM usage_agg "
            "WHERE scope = ? AND bucket >= ? AND bucket < ?"
            + (f" GROUP BY {', '.join(group)}" if group else ""), (self.scope, lo, hi)).fetchall()
        name = self._names({k for row in rows for k in row[1:4]})
        out = [Bucket(b * BUCKET_US, name(model), name(session), name(cwd), False, n, i, o, c5,
                      c1, cr, None if unpriced else cost, first, last)
               for b, model, session, cwd, n, i, o, c5, c1, cr, cost, unpriced, first, last
               in rows if b is not None]
        for rec in self._manual(lo * BUCKET_US, until_us if until_us is not None else 1 << 62):
            ts = _us(rec.timestamp)
            out.append(Bucket(ts - ts % BUCKET_US, rec.model, rec.session_id, rec.cwd or "",
                              True, 1, rec.input_tokens, rec.output_tokens,
                              rec.cache_creation_5m_tokens, rec.cache_creation_1h_tokens,
                              rec.cache_read_tokens, rec.cost_usd, ts, ts))
        return out

    def _offset_sql(self, tz: tzinfo, lo: int, hi: int) -> str:
        """SQL for the UTC offset (seconds) of `tz` at `bucket`: a CASE over its changes."""
        first, last = (self.conn.execute(f"SELECT {f}(bucket) FROM usage_agg WHERE scope = ?",
                                         (self.scope,)).fetchone()[0] for f in ("MIN", "MAX"))
        # (one query each: together they scan the table, alone each reads one end of it)
        changes = _offsets(tz, max(lo, first or 0), min(hi, (last or 0) + 1))
        if len(changes) == 1:
            return str(changes[0][1])
        whens = " ".join(f"WHEN bucket < {b} THEN {off}"
                         for (b, _), (_, off) in zip(changes[1:], changes, strict=False))
        return f"(CASE {whens} ELSE {changes[-1][1]} END)"

    def records(self, since: datetime | None = None,
                until: datetime | None = None) -> list[UsageRecord]:
        """The usage records (winners, then manual records) with since <= timestamp < until."""
        lo = _us(since) if since else 0
        hi = _us(until) if until else 1 << 62
        rows = self.conn.execute(
            "SELECT ts, session, cwd, branch, model, inp, out, cw5, cw1, cr, cost "
            "FROM usage_line WHERE scope = ? AND ts >= ? AND ts < ? AND win = 1 ORDER BY ts",
            (self.scope, lo, hi)).fetchall()
        name = self._names({k for row in rows for k in row[1:5]})
        out = [UsageRecord(
            timestamp=datetime.fromtimestamp(ts / 1e6, UTC), session_id=name(session),
            cwd=name(cwd) or None, git_branch=name(branch) or None, model=name(model),
            input_tokens=i, output_tokens=o, cache_creation_5m_tokens=c5,
            cache_creation_1h_tokens=c1, cache_read_tokens=cr, cost_usd=cost)
            for ts, session, cwd, branch, model, i, o, c5, c1, cr, cost in rows]
        return out + self._manual(lo, hi)

    def _names(self, keys: set[int | None]) -> Callable[[int | None], str]:
        """Key → name for these keys (`calsync.keys`); no key, or 0, reads as ""."""
        keys.discard(None)
        keys.discard(0)
        found: dict[int | None, str] = {}
        todo = list(keys)
        for at in range(0, len(todo), 500):
            part = todo[at:at + 500]
            found.update(self.conn.execute(
                f"SELECT id, text FROM usage_name WHERE id IN ({', '.join('?' * len(part))})",
                part).fetchall())
        return lambda key: found.get(key, "")

    def _manual(self, lo_us: int, hi_us: int) -> list[UsageRecord]:
        cur = self.conn.execute(
            "SELECT id, ts, model, project, inp, out, cw5, cw1, cr, note FROM usage_manual "
            "WHERE ts >= ? AND ts < ? ORDER BY ts, id", (lo_us, hi_us))
        out = []
        for rid, ts, model, project, i, o, c5, c1, cr, note in cur:
            cost = self.prices.cost(_priced_model(model), i, o, c5, c1, cr) if self.prices else None
            out.append(UsageRecord(
                timestamp=datetime.fromtimestamp(ts / 1e6, UTC), session_id=f"manual-{rid}",
                cwd=project, git_branch=None, model=model, input_tokens=i, output_tokens=o,
                cache_creation_5m_tokens=c5, cache_creation_1h_tokens=c1,
                cache_read_tokens=cr, cost_usd=cost, manual=True, note=note))
        return out


def _offsets(tz: tzinfo, lo: int, hi: int) -> list[tuple[int, int]]:
    """(first bucket, UTC offset in seconds) of each offset `tz` has in buckets [lo, hi)."""
    def offset(bucket: int) -> int:
        moment = datetime.fromtimestamp(bucket * 900, UTC).astimezone(tz)
        return int(moment.utcoffset().total_seconds())  # type: ignore[union-attr]

    out = [(lo, offset(lo))]
    at = lo
    while at < hi - 1:
        nxt = min(at + 96, hi - 1)                      # a day at a time, then bisect
        if offset(nxt) != out[-1][1]:
            a, b = at, nxt
            while b - a > 1:
                mid = (a + b) // 2
                a, b = (mid, b) if offset(mid) == out[-1][1] else (a, mid)
            out.append((b, offset(b)))
        at = nxt
    return out


def _listing_key(found: list[tuple[str, transcripts.FileStat]]) -> bytes:
    """A digest of a listing: every file with its device, inode, size and mtime, in order."""
    return hashlib.blake2b(marshal.dumps(found), digest_size=16).digest()


def _us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _priced_model(model: str) -> str:
    """A family name given to `calsync log` is priced as that family's reference model."""
    from .pricing import FAMILY_REFERENCE_MODEL
    from .records import Family

    if model.lower() in {f.value for f in Family}:
        return FAMILY_REFERENCE_MODEL.get(Family(model.lower()), model)
    return model


# --- the library entry points ------------------------------------------------------------

def price_key(overrides: Mapping[str, Any]) -> str:
    """Changes whenever the prices used for costs change (shipped table or overrides)."""
    from importlib import resources

    import orjson

    shipped = resources.files("calsync.data").joinpath("prices.toml").read_bytes()
    extra = orjson.dumps(overrides, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(shipped + extra, digest_size=12).hexdigest()


def open_ledger(config: UsageConfig, env: Mapping[str, str], *, home: Path | None = None,
                logs: Sequence[Path] = ()) -> Ledger:
    """The ledger of the log dirs that `logs`, the config, or the environment name."""
    from . import paths
    from .pricing import load_prices
    from .state import open_state

    dirs = transcripts.log_dirs(env, home, logs or config.logs)
    conn = open_state(paths.state_dir(config.state_dir, env))
    return Ledger(conn, dirs, lambda: load_prices(config.prices), price_key(config.prices))


def load_usage(config: UsageConfig, env: Mapping[str, str], *, since: datetime | None,
               until: datetime | None, home: Path | None = None,
               logs: Sequence[Path] = ()) -> list[UsageRecord]:
    """Read what is new in the logs, then every usage record with since <= timestamp < until.

    For the sync engine. Problems in the logs are not raised (see `Ledger.update`).
    """
    ledger = open_ledger(config, env, home=home, logs=logs)
    try:
        with _no_cycle_collection():
            ledger.update()
            return ledger.records(since, until)
    finally:
        ledger.conn.close()


@dataclass
class UsageReport:
    rows: list[dict[str, Any]]
    scan: ScanReport
    unpriced: list[str]           # models with no known price among the rows' records


def usage_report(config: UsageConfig, env: Mapping[str, str], *, by: str, tz: tzinfo,
                 since: date | None = None, until: date | None = None,
                 project: str | None = None, logs: Sequence[Path] = (),
                 home: Path | None = None, workers: int = 0,
                 listing: transcripts.Listing | None = None) -> UsageReport:
    """`calsync usage`: read what is new, then group the ledger into report rows
    (`listing`: see `Ledger.update`)."""
    with _no_cycle_collection():
        return _usage_report(config, env, by=by, tz=tz, since=since, until=until,
                             project=project, logs=logs, home=home, workers=workers,
                             listing=listing)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector: a scan makes hundreds of thousands of objects
    without cycles, and collections that walk them all cost more than the work itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _usage_report(config: UsageConfig, env: Mapping[str, str], *, by: str, tz: tzinfo,
                  since: date | None, until: date | None, project: str | None,
                  logs: Sequence[Path], home: Path | None, workers: int,
                  listing: transcripts.Listing | None) -> UsageReport:
    ledger = open_ledger(config, env, home=home, logs=logs)
    try:
        scan = ledger.update(workers=workers, listing=listing)
        lo = _us(datetime.combine(since, time(), tz)) if since else None
        hi = _us(datetime.combine(until + timedelta(days=1), time(), tz)) if until else None
        keys = GROUP_KEYS[by] + (("cwd",) if project and "cwd" not in GROUP_KEYS[by] else ())
        buckets = ledger.buckets(lo, hi, tz=tz, keys=keys)
    finally:
        ledger.conn.close()
    rows = report_rows(buckets, by=by, tz=tz, since=since, until=until, project=project,
                       projects=config.project_paths)
    unpriced = sorted({b.model for b in buckets if b.cost_usd is None})
    return UsageReport(rows, scan, unpriced)


def log_manual(config: UsageConfig, env: Mapping[str, str], record: UsageRecord) -> int:
    """Store a record for work that left no Claude Code log (`calsync log`); returns its id."""
    from . import paths
    from .state import open_state

    conn = open_state(paths.state_dir(config.state_dir, env))
    try:
        return add_manual_record(conn, record)
    finally:
        conn.close()


def add_manual_record(conn: sqlite3.Connection, record: UsageRecord) -> int:
    """Store a manual record in an open state database; returns its id."""
    row = conn.execute(
        "INSERT INTO usage_manual (ts, model, project, inp, out, cw5, cw1, cr, note) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (_us(record.timestamp), record.model, record.cwd, record.input_tokens,
         record.output_tokens, record.cache_creation_5m_tokens,
         record.cache_creation_1h_tokens, record.cache_read_tokens, record.note)).fetchone()
    return int(row[0])
