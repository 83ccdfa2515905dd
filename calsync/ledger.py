"""The usage ledger: every usage record calsync has counted, kept in the state database.

A run reads only what it has not read. Per transcript file the ledger keeps its identity
(device and inode), size, modification time, the offset just after the last line read, and
hashes of its first and last 4 KiB before that offset. Then, per file found:

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
incremental run gives exactly what a cold run gives.

Winners are summed per 15-minute bucket, model, session and working directory in
`usage_agg`, so reports in any time zone never touch the lines. Scopes: each set of log
directories read together is its own ledger, so `--logs elsewhere` never mixes with the usual
logs. Manual records (`calsync log`) belong to every scope.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import LogLineError, NoLogsError
from .model import UsageRecord
from .sources import claude_code as cc
from .usage import Bucket, report_rows

if TYPE_CHECKING:
    from .config import Settings
    from .pricing import PriceTable

BUCKET_US = 900_000_000           # 15 minutes: every real zone offset is a multiple of it
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
    stat: os.stat_result
    start: int                    # 0 for new and re-read files


def _plan_file(row: _FileRow | None, path: str, st: os.stat_result) -> _Read | None:
    """What to read of one file (None: nothing), from its ledger row and its stat."""
    if row is None:
        return _Read(None, path, st, 0)
    if (row.dev, row.ino, row.size, row.mtime_ns) == (st.st_dev, st.st_ino, st.st_size,
                                                       st.st_mtime_ns):
        return None
    if (row.dev, row.ino) != (st.st_dev, st.st_ino) or st.st_size < row.offset:
        return _Read(row, path, st, 0)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None                 # gone meanwhile: what it gave is kept
    try:
        if cc.file_hashes(fd, row.offset) != (row.head, row.tail):
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
                 prices: PriceTable | None = None, price_key: str = "") -> None:
        self.conn = conn
        self.dirs = list(dirs)
        self.prices = prices
        self.price_key = price_key
        key = "\n".join(sorted(str(d) for d in self.dirs))
        conn.execute("INSERT OR IGNORE INTO usage_scope (dirs) VALUES (?)", (key,))
        self.scope = int(conn.execute("SELECT id FROM usage_scope WHERE dirs = ?",
                                      (key,)).fetchone()[0])

    # --- reading the logs ----------------------------------------------------------------
    def _rows(self) -> dict[str, _FileRow]:
        cur = self.conn.execute(
            "SELECT id, path, dev, ino, size, mtime_ns, offset, head, tail, open_tail, "
            "first_ts, resumed FROM usage_file WHERE scope = ?", (self.scope,))
        return {r[1]: _FileRow(*r) for r in cur}

    def update(self, *, workers: int = 0) -> ScanReport:
        """Read what is new in the logs into the ledger; report what was wrong with them."""
        found, unreadable = cc.find_files(self.dirs)
        report = ScanReport(files=len(found), unreadable=unreadable)
        stale_prices = self._stale_prices()
        plan = [p for p in (_plan_file(r, path, st) for r, path, st in self._join(found)) if p]
        if plan or stale_prices:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                # plan again under the lock: another run may have read these files meanwhile
                plan = [p for p in (_plan_file(r, path, st) for r, path, st in self._join(found))
                        if p]
                _Writer(self, report).run(plan, workers, stale_prices)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        report.problems = self._problems({path for path, _ in found})
        if not found and not self._has_history():
            raise NoLogsError([str(d) for d in self.dirs])
        return report

    def _join(self, found: Iterable[tuple[str, os.stat_result]]
              ) -> list[tuple[_FileRow | None, str, os.stat_result]]:
        rows = self._rows()
        return [(rows.get(path), path, st) for path, st in found]

    def _stale_prices(self) -> bool:
        row = self.conn.execute("SELECT prices FROM usage_scope WHERE id = ?",
                                (self.scope,)).fetchone()
        return bool(self.price_key) and row[0] != self.price_key

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
    def buckets(self, since_us: int | None = None, until_us: int | None = None) -> list[Bucket]:
        """Winners per bucket (and manual records) with start in [since_us, until_us)."""
        lo = (since_us or 0) // BUCKET_US
        hi = -(-until_us // BUCKET_US) if until_us is not None else 1 << 62
        cur = self.conn.execute(
            "SELECT bucket, model, session, cwd, n, inp, out, cw5, cw1, cr, cost, unpriced, "
            "first_ts, last_ts FROM usage_agg WHERE scope = ? AND bucket >= ? AND bucket < ?",
            (self.scope, lo, hi))
        out = [Bucket(b * BUCKET_US, model, session, cwd, False, n, i, o, c5, c1, cr,
                      None if unpriced else cost, first, last)
               for b, model, session, cwd, n, i, o, c5, c1, cr, cost, unpriced, first, last in cur]
        for rec in self._manual(lo * BUCKET_US, until_us if until_us is not None else 1 << 62):
            ts = _us(rec.timestamp)
            out.append(Bucket(ts - ts % BUCKET_US, rec.model, rec.session_id, rec.cwd or "",
                              True, 1, rec.input_tokens, rec.output_tokens,
                              rec.cache_creation_5m_tokens, rec.cache_creation_1h_tokens,
                              rec.cache_read_tokens, rec.cost_usd, ts, ts))
        return out

    def records(self, since: datetime | None = None,
                until: datetime | None = None) -> list[UsageRecord]:
        """The usage records (winners, then manual records) with since <= timestamp < until."""
        lo = _us(since) if since else 0
        hi = _us(until) if until else 1 << 62
        cur = self.conn.execute(
            "SELECT ts, session, cwd, branch, model, inp, out, cw5, cw1, cr, cost, mid, rid "
            "FROM usage_line WHERE scope = ? AND win = 1 AND ts >= ? AND ts < ? ORDER BY ts",
            (self.scope, lo, hi))
        out = [UsageRecord(
            timestamp=datetime.fromtimestamp(ts / 1e6, UTC), session_id=session or "",
            cwd=cwd, git_branch=branch, model=model, input_tokens=i, output_tokens=o,
            cache_creation_5m_tokens=c5, cache_creation_1h_tokens=c1, cache_read_tokens=cr,
            cost_usd=cost, message_id=mid, request_id=rid)
            for ts, session, cwd, branch, model, i, o, c5, c1, cr, cost, mid, rid in cur]
        return out + self._manual(lo, hi)

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


def _us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _priced_model(model: str) -> str:
    """A family name given to `calsync log` is priced as that family's reference model."""
    from .model import Family
    from .pricing import FAMILY_REFERENCE_MODEL

    if model.lower() in {f.value for f in Family}:
        return FAMILY_REFERENCE_MODEL.get(Family(model.lower()), model)
    return model


_LINE_COLUMNS = ("file, off, mid, rid, side, ts, session, cwd, branch, model, inp, out, cw5, "
                 "cw1, cr, line_cost, cost, total, win, scope")


class _Writer:
    """One write transaction of `Ledger.update`: read, store, decide winners, re-sum."""

    def __init__(self, ledger: Ledger, report: ScanReport) -> None:
        self.ledger = ledger
        self.conn = ledger.conn
        self.scope = ledger.scope
        self.report = report
        self.cold = self.conn.execute("SELECT 1 FROM usage_line WHERE scope = ? LIMIT 1",
                                      (self.scope,)).fetchone() is None
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS aff_mid (mid TEXT PRIMARY KEY)")
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS aff_bucket (b INTEGER PRIMARY KEY)")
        self.conn.execute("DELETE FROM aff_mid")
        self.conn.execute("DELETE FROM aff_bucket")

    def run(self, plan: list[_Read], workers: int, stale_prices: bool) -> None:
        ids, ranges = self._prepare(plan)
        ends: dict[int, list[cc.RangeResult]] = {}
        cost = self.ledger.prices.cost if self.ledger.prices else None
        for res in cc.scan_ranges(ranges, cost=cost, workers=workers, batch_bytes=PIECE_BYTES):
            self._store(res)
            ends.setdefault(res.key, []).append(res)
            self.report.bytes_read += res.end - res.start
        done = [self._finish_file(key, ids[key], results) for key, results in ends.items()]
        self.conn.executemany(
            "UPDATE usage_file SET dev = ?, ino = ?, size = ?, mtime_ns = ?, offset = ?, "
            "head = ?, tail = ?, open_tail = ?, first_ts = ?, resumed = ? WHERE id = ?",
            [row for row in done if row is not None])
        if stale_prices:
            self._reprice()
        self._decide()
        self._resum()
        self.conn.execute("UPDATE usage_scope SET prices = ? WHERE id = ?",
                          (self.ledger.price_key, self.scope))

    def _prepare(self, plan: list[_Read]) -> tuple[dict[int, _Read], list[cc.Range]]:
        ids: dict[int, _Read] = {}
        ranges: list[cc.Range] = []
        for item in plan:
            if item.row is None:
                st = item.stat
                file_id = int(self.conn.execute(
                    "INSERT INTO usage_file (scope, path, dev, ino, size, mtime_ns) "
                    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (self.scope, item.path, st.st_dev, st.st_ino, -1, -1)).fetchone()[0])
            else:
                file_id = item.row.id
                if item.start == 0 and item.row.offset > 0:
                    self._forget(file_id)
                    self.report.reread.append(item.path)
            ids[file_id] = item
            ranges += cc.split_ranges(file_id, item.path, item.start, item.stat.st_size,
                                      PIECE_BYTES)
        return ids, ranges

    def _forget(self, file_id: int) -> None:
        """Drop what a rewritten file contributed; the decision is made again for its ids."""
        self._touch_lines("file = ?", (file_id,))
        self.conn.execute("DELETE FROM usage_line WHERE file = ?", (file_id,))
        self.conn.execute("DELETE FROM usage_problem WHERE file = ?", (file_id,))

    def _touch_lines(self, where: str, args: tuple[Any, ...]) -> None:
        if self.cold:
            return
        self.conn.execute(f"INSERT OR IGNORE INTO aff_mid SELECT mid FROM usage_line "
                          f"WHERE {where} AND mid IS NOT NULL", args)
        self.conn.execute(f"INSERT OR IGNORE INTO aff_bucket SELECT ts / {BUCKET_US} "
                          f"FROM usage_line WHERE {where} AND win = 1", args)

    def _store(self, res: cc.RangeResult) -> None:
        if res.error is not None:
            return
        key, scope = res.key, self.scope
        rows = [(key, *line, 1 if line[1] is None else 0, scope) for line in res.lines]
        self.conn.executemany(
            f"INSERT INTO usage_line ({_LINE_COLUMNS}) VALUES ({', '.join('?' * 20)})", rows)
        if not self.cold and rows:
            self.conn.executemany("INSERT OR IGNORE INTO aff_mid VALUES (?)",
                                  [(r[2],) for r in rows if r[2] is not None])
            self.conn.executemany("INSERT OR IGNORE INTO aff_bucket VALUES (?)",
                                  {(r[5] // BUCKET_US,) for r in rows if r[2] is None})
        if res.problems:
            self.conn.executemany("INSERT INTO usage_problem (file, off, message) VALUES (?,?,?)",
                                  [(res.key, off, msg) for off, msg in res.problems])

    def _finish_file(self, file_id: int, item: _Read,
                     results: list[cc.RangeResult]) -> tuple[Any, ...] | None:
        """The file's new ledger row (None: it could not be read; what this run took from it
        is dropped and it is read again next time)."""
        failed = next((r.error for r in results if r.error), None)
        if failed:
            self.report.unreadable.append(f"{item.path}: {failed}")
            self._touch_lines("file = ? AND off >= ?", (file_id, item.start))
            self.conn.execute("DELETE FROM usage_line WHERE file = ? AND off >= ?",
                              (file_id, item.start))
            self.conn.execute("DELETE FROM usage_problem WHERE file = ? AND off >= ?",
                              (file_id, item.start))
            if item.row is None:
                self.conn.execute("DELETE FROM usage_file WHERE id = ?", (file_id,))
            return None
        last = max(results, key=lambda r: r.start)
        firsts = [r.first_ts for r in results if r.first_ts is not None]
        if item.start > 0 and item.row and item.row.first_ts is not None:
            firsts.append(item.row.first_ts)
        first = min(firsts, default=None)
        if item.row is not None and first != item.row.first_ts:
            self._touch_lines("file = ?", (file_id,))   # its ties may now break the other way
        if any(r.problems for r in results):
            self._number_problems(file_id, item.path)
        facts = last.facts
        resumed = facts.resumed if facts else bool(item.row and item.row.resumed)
        st = item.stat
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, last.end,
                facts.head if facts else None, facts.tail if facts else None,
                int(last.open_tail), first, int(resumed), file_id)

    def _number_problems(self, file_id: int, path: str) -> None:
        """Turn the byte offsets of new problems into line numbers (one pass over the file)."""
        todo = self.conn.execute("SELECT rowid, off FROM usage_problem WHERE file = ? AND "
                                 "line IS NULL ORDER BY off", (file_id,)).fetchall()
        if not todo:
            return
        numbered = []
        with open(path, "rb") as fh:
            line, at = 1, 0
            for rowid, off in todo:
                line += fh.read(off - at).count(b"\n")
                at = off
                numbered.append((line, rowid))
        self.conn.executemany("UPDATE usage_problem SET line = ? WHERE rowid = ?", numbered)

    def _reprice(self) -> None:
        prices = self.ledger.prices
        self.conn.create_function(
            "calsync_cost", 6, prices.cost if prices else (lambda *a: None), deterministic=True)
        self.conn.execute("UPDATE usage_line SET cost = COALESCE(line_cost, calsync_cost(model, "
                          "inp, out, cw5, cw1, cr)) WHERE scope = ?", (self.scope,))
        self.cold = True            # every bucket is summed again

    def _decide(self) -> None:
        """Mark the lines that count (module docstring, rules 1-4) among the affected ids."""
        s = self.scope
        where = "" if self.cold else "AND mid IN (SELECT mid FROM aff_mid)"
        if not self.cold:
            self.conn.execute(f"INSERT OR IGNORE INTO aff_bucket SELECT ts / {BUCKET_US} "
                              f"FROM usage_line WHERE scope = ? AND win = 1 {where}", (s,))
        self.conn.execute(f"UPDATE usage_line SET win = 0 WHERE scope = ? AND win = 1 "
                          f"AND mid IS NOT NULL {where}", (s,))
        self.conn.execute(f"""
            WITH g AS (SELECT mid, MAX(side = 0) AS ns FROM usage_line
                       WHERE scope = :s AND mid IS NOT NULL {where} GROUP BY mid),
            r AS (SELECT l.id AS id, ROW_NUMBER() OVER (
                      PARTITION BY l.mid, CASE WHEN g.ns THEN l.rid END
                      ORDER BY l.total DESC, f.resumed, f.first_ts, f.path, l.off) AS rn
                  FROM usage_line l JOIN g ON g.mid = l.mid JOIN usage_file f ON f.id = l.file
                  WHERE l.scope = :s AND (l.side = 0 OR g.ns = 0))
            UPDATE usage_line SET win = 1 WHERE id IN (SELECT id FROM r WHERE rn = 1)""",
                          {"s": s})
        if not self.cold:
            self.conn.execute(f"INSERT OR IGNORE INTO aff_bucket SELECT ts / {BUCKET_US} "
                              f"FROM usage_line WHERE scope = ? AND win = 1 {where}", (s,))

    def _resum(self) -> None:
        """Sum the winners again in every affected bucket (all of them after a cold run)."""
        s = self.scope
        select = (f"SELECT :s, l.ts / {BUCKET_US} AS b, l.model, COALESCE(l.session, ''), "
                  "COALESCE(l.cwd, ''), COUNT(*), SUM(l.inp), SUM(l.out), SUM(l.cw5), "
                  "SUM(l.cw1), SUM(l.cr), TOTAL(l.cost), SUM(l.cost IS NULL), MIN(l.ts), "
                  "MAX(l.ts) FROM ")
        group = " GROUP BY b, l.model, COALESCE(l.session, ''), COALESCE(l.cwd, '')"
        if self.cold:
            self.conn.execute("DELETE FROM usage_agg WHERE scope = ?", (s,))
            self.conn.execute(f"INSERT INTO usage_agg {select} usage_line l "
                              f"WHERE l.scope = :s AND l.win = 1 {group}", {"s": s})
            return
        self.conn.execute("DELETE FROM usage_agg WHERE scope = ? AND bucket IN "
                          "(SELECT b FROM aff_bucket)", (s,))
        self.conn.execute(
            f"INSERT INTO usage_agg {select} aff_bucket a JOIN usage_line l ON l.scope = :s "
            f"AND l.win = 1 AND l.ts >= a.b * {BUCKET_US} AND l.ts < (a.b + 1) * {BUCKET_US}"
            f"{group}", {"s": s})


# --- the library entry points ------------------------------------------------------------

def price_key(overrides: Mapping[str, Any]) -> str:
    """Changes whenever the prices used for costs change (shipped table or overrides)."""
    from importlib import resources

    import orjson

    shipped = resources.files("calsync.data").joinpath("prices.toml").read_bytes()
    extra = orjson.dumps(overrides, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(shipped + extra, digest_size=12).hexdigest()


def open_ledger(settings: Settings, env: Mapping[str, str], *, home: Path | None = None,
                logs: Sequence[Path] = ()) -> Ledger:
    """The ledger of the log dirs that `logs`, the config, or the environment name."""
    from .config import default_state_dir
    from .pricing import load_prices
    from .state import open_state

    home = home or Path(env.get("HOME") or Path.home())
    dirs = cc.log_dirs(env, home, logs or settings.usage.logs)
    conn = open_state(default_state_dir(settings, env))
    return Ledger(conn, dirs, load_prices(settings.prices), price_key(settings.prices))


def load_usage(settings: Settings, env: Mapping[str, str], *, since: datetime | None,
               until: datetime | None, home: Path | None = None,
               logs: Sequence[Path] = ()) -> list[UsageRecord]:
    """Read what is new in the logs, then every usage record with since <= timestamp < until.

    For the sync engine. Problems in the logs are not raised (see `Ledger.update`).
    """
    ledger = open_ledger(settings, env, home=home, logs=logs)
    try:
        ledger.update()
        return ledger.records(since, until)
    finally:
        ledger.conn.close()


@dataclass
class UsageReport:
    rows: list[dict[str, Any]]
    scan: ScanReport
    unpriced: list[str]           # models with no known price among the rows' records


def usage_report(settings: Settings, env: Mapping[str, str], *, by: str, tz: tzinfo,
                 since: date | None = None, until: date | None = None,
                 project: str | None = None, logs: Sequence[Path] = (),
                 home: Path | None = None, workers: int = 0) -> UsageReport:
    """`calsync usage`: read what is new, then group the ledger into report rows."""
    ledger = open_ledger(settings, env, home=home, logs=logs)
    try:
        scan = ledger.update(workers=workers)
        lo = _us(datetime.combine(since, time(), tz)) if since else None
        hi = _us(datetime.combine(until + timedelta(days=1), time(), tz)) if until else None
        buckets = ledger.buckets(lo, hi)
    finally:
        ledger.conn.close()
    projects = {name: p.paths for name, p in settings.projects.items() if p.paths}
    rows = report_rows(buckets, by=by, tz=tz, since=since, until=until, project=project,
                       projects=projects)
    unpriced = sorted({b.model for b in buckets if b.cost_usd is None})
    return UsageReport(rows, scan, unpriced)


def log_manual(settings: Settings, env: Mapping[str, str], record: UsageRecord) -> int:
    """Store a record for work that left no Claude Code log (`calsync log`); returns its id."""
    from .config import default_state_dir
    from .state import open_state

    conn = open_state(default_state_dir(settings, env))
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
