"""One write transaction of the usage ledger (`Ledger.update`): read what the plan says,
store the lines, decide which count, and sum them again where that changed.

Apart from `calsync.ledger` so that a run with nothing to read (the warm path) does not
import the scanners and what they need (msgspec, orjson): `Ledger._write` imports it.
The rules it applies are in `calsync.ledger`'s docstring.
"""

from __future__ import annotations

import itertools
import operator
import threading
from typing import TYPE_CHECKING, Any

from . import ledger as _ledger
from .ledger import BUCKET_US, ScanReport, _Read
from .sources import claude_code as cc
from .state import USAGE_LINE_INDEXES

if TYPE_CHECKING:
    from .ledger import Ledger

# PIECE_BYTES is read from `calsync.ledger` at each use (tests change it there).


class Writer:
    """One write transaction of `Ledger.update`: read, store, decide winners, re-sum."""

    def __init__(self, ledger: Ledger, report: ScanReport) -> None:
        self.ledger = ledger
        self.conn = ledger.conn
        self.scope = ledger.scope
        self.report = report
        # A first scan of the scope (cold): its lines are stored counting as they would on
        # their own (see `_decide`), and every bucket is summed.
        self.cold = self.conn.execute("SELECT 1 FROM usage_line WHERE scope = ? LIMIT 1",
                                      (self.scope,)).fetchone() is None
        self.every_bucket = self.cold       # sum every bucket again (also after new prices)
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS aff_mid (mh INTEGER PRIMARY KEY)")
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS aff_bucket (b INTEGER PRIMARY KEY)")
        # the rows of the new files the scanners read whole, written once all have come:
        # in path order, they are appended to the table and its index, not inserted all over
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS new_file "
                          f"({', '.join(cc.FILE_COLUMNS)})")
        self.conn.execute("DELETE FROM aff_mid")
        self.conn.execute("DELETE FROM aff_bucket")
        self.conn.execute("DELETE FROM new_file")
        self.ids: dict[int, _Read] = {}
        self.expect: dict[int, int] = {}                # ranges still to come, per file
        self.ends: dict[int, list[cc.RangeResult]] = {}  # what came, without the lines
        self.complete: list[int] = []                   # files read to the end, unfinished
        self.stopping: threading.Thread | None = None   # stops the scanners after the scan

    def run(self, plan: list[_Read], workers: int, stale_prices: bool,
            pool: Any = None) -> None:
        # 4 MiB: memory stays flat. (16 MiB spills fewer pages, but the sorter's share of
        # memory follows it: 30 MB more at 1 GB, and no faster on two cores.)
        self.conn.execute("PRAGMA cache_size = -4096")
        empty = self.conn.execute("SELECT 1 FROM usage_line LIMIT 1").fetchone() is None
        bulk = self.cold and empty
        if bulk:
            for name in USAGE_LINE_INDEXES:
                self.conn.execute(f"DROP INDEX IF EXISTS {name}")
        ranges = self._prepare(plan)
        cost = self.ledger.prices.cost if self.ledger.prices else None
        for batch in cc.scan_ranges(ranges, cost=cost, workers=workers,
                                    batch_bytes=_ledger.PIECE_BYTES, pool=pool):
            self._store(batch)
            for key, size in batch.whole:           # its row came in the batch
                self.report.bytes_read += size
                del self.ids[key], self.expect[key]
            for res in batch.results:
                self.report.bytes_read += res.end - res.start
                # keep what the file's ledger row needs (memory stays flat)
                self.ends.setdefault(res.key, []).append(res)
                self.expect[res.key] -= 1
                if not self.expect[res.key]:
                    self.complete.append(res.key)
            self._finish_files()
        if pool is not None:    # the scanners are done: they stop while the ledger works
            self.stopping = threading.Thread(target=pool.terminate, name="stop-scanners")
            self.stopping.start()
        columns = ", ".join(cc.FILE_COLUMNS)
        self.conn.execute(f"INSERT INTO usage_file (scope, {columns}) SELECT ?, {columns} "
                          "FROM new_file ORDER BY id", (self.scope,))
        self.conn.execute("DELETE FROM new_file")
        if bulk:
            for sql in USAGE_LINE_INDEXES.values():
                self.conn.execute(sql)
        if stale_prices and not self.cold:     # a cold run priced every line as it read it
            self._reprice()
        self._decide()
        self._resum()
        self.conn.execute("UPDATE usage_scope SET prices = ? WHERE id = ?",
                          (self.ledger.price_key, self.scope))

    def _prepare(self, plan: list[_Read]) -> list[cc.Range]:
        ranges: list[cc.Range] = []
        new: list[tuple[Any, ...]] = []     # rows of new files read in pieces (the scanners
                                            # make the rows of those they read whole)
        next_id = int(self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM usage_file")
                      .fetchone()[0])
        scope, ids, expect = self.scope, self.ids, self.expect
        for item in plan:
            size = item.stat[2]
            if item.row is None:
                file_id, next_id = next_id, next_id + 1
                if size <= _ledger.PIECE_BYTES:  # read whole by one scanner: it makes the row
                    ids[file_id] = item
                    expect[file_id] = 1
                    ranges.append(cc.Range(file_id, item.path, 0, size, True, item.stat))
                    continue
                new.append((file_id, scope, item.path, *item.stat[:2], -1, -1))
            else:
                file_id = item.row.id
                if item.start == 0 and item.row.offset > 0:
                    self._forget(file_id)
                    self.report.reread.append(item.path)
            ids[file_id] = item
            pieces = cc.split_ranges(file_id, item.path, item.start, size, _ledger.PIECE_BYTES)
            expect[file_id] = len(pieces)
            ranges += pieces
        self.conn.executemany("INSERT INTO usage_file (id, scope, path, dev, ino, size, "
                              "mtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?)", new)
        return ranges

    def _forget(self, file_id: int) -> None:
        """Drop what a rewritten file contributed; the decision is made again for its ids."""
        self._touch_lines("file = ?", (file_id,))
        self.conn.execute("DELETE FROM usage_line WHERE file = ?", (file_id,))
        self.conn.execute("DELETE FROM usage_problem WHERE file = ?", (file_id,))

    def _touch_lines(self, where: str, args: tuple[Any, ...]) -> None:
        """Mark the ids and buckets of these lines (about to go, or to rank otherwise) for
        `_decide` and `_resum` (a cold run decides every id and sums every bucket)."""
        if self.cold:
            return
        self.conn.execute(f"INSERT OR IGNORE INTO aff_mid SELECT mh FROM usage_line "
                          f"WHERE {where} AND mh IS NOT NULL", args)
        self.conn.execute(f"INSERT OR IGNORE INTO aff_bucket SELECT ts / {BUCKET_US} "
                          f"FROM usage_line WHERE {where} AND win = 1", args)

    def _store(self, batch: cc.Batch) -> None:
        """Copy a batch's lines into the ledger (in SQL: no Python per line)."""
        conn = self.conn
        conn.deserialize(batch.lines, name="scan")
        conn.execute("INSERT OR IGNORE INTO usage_name SELECT id, text FROM scan.name")
        columns = ", ".join(cc.LINE_COLUMNS)
        if self.cold:                   # each line counts as it would on its own
            conn.execute(f"INSERT INTO usage_line ({columns}, scope, win) SELECT {columns}, ?, "
                         "side = 0 OR mh IS NULL FROM scan.line", (self.scope,))
        else:                           # new lines count until `_decide` says otherwise
            conn.execute(f"INSERT INTO usage_line ({columns}, scope) SELECT {columns}, ? "
                         "FROM scan.line", (self.scope,))
            conn.execute("INSERT OR IGNORE INTO aff_mid SELECT mh FROM scan.line "
                         "WHERE mh IS NOT NULL")
            conn.execute(f"INSERT OR IGNORE INTO aff_bucket SELECT ts / {BUCKET_US} "
                         "FROM scan.line")
        conn.execute("INSERT INTO usage_problem (file, off, line, message) "
                     "SELECT file, off, line, message FROM scan.problem")
        conn.execute("INSERT INTO new_file SELECT * FROM scan.file")

    def _finish_files(self) -> None:
        """Write the ledger rows of the files read to the end."""
        done, self.complete = self.complete, []
        finished = [self._finish_file(key, self.ids.pop(key), self.ends.pop(key))
                    for key in done]
        self.conn.executemany(
            "UPDATE usage_file SET dev = ?, ino = ?, size = ?, mtime_ns = ?, offset = ?, "
            "head = ?, tail = ?, open_tail = ?, first_ts = ?, resumed = ? WHERE id = ?",
            [row for row in finished if row is not None])

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
        return (*st, last.end,
                facts.head if facts else None, facts.tail if facts else None,
                int(last.open_tail), first, int(resumed), file_id)

    def _number_problems(self, file_id: int, path: str) -> None:
        """Turn the byte offsets of new problems into line numbers (one pass over the file)."""
        todo = self.conn.execute("SELECT rowid, off FROM usage_problem WHERE file = ? AND "
                                 "line IS NULL ORDER BY off", (file_id,)).fetchall()
        if todo:
            lines = cc.line_numbers(path, [off for _, off in todo])
            self.conn.executemany("UPDATE usage_problem SET line = ? WHERE rowid = ?",
                                  [(line, rowid) for (rowid, _), line in zip(todo, lines,
                                                                             strict=True)])

    def _reprice(self) -> None:
        prices = self.ledger.prices
        self.conn.create_function(
            "calsync_cost", 6, prices.cost if prices else (lambda *a: None), deterministic=True)
        self.conn.execute("UPDATE usage_line SET cost = COALESCE(line_cost, calsync_cost("
                          "(SELECT text FROM usage_name WHERE id = model), "
                          "inp, out, cw5, cw1, cr)) WHERE scope = ?", (self.scope,))
        self.every_bucket = True

    def _decide(self) -> None:
        """Mark the lines that count (module docstring, rules 1-4) among the affected ids."""
        conn, scope = self.conn, self.scope
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS flip (id INTEGER PRIMARY KEY, "
                     "win INTEGER NOT NULL, b INTEGER NOT NULL)")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS one_main (mh INTEGER PRIMARY KEY)")
        conn.execute("DELETE FROM flip")
        conn.execute("DELETE FROM one_main")
        if self.cold:
            # Each line was stored counting as it would on its own: a non-sidechain line
            # counts, a sidechain line does not. That is the decision for every message with
            # exactly one non-sidechain line (rule 2: a sub-agent's call and the progress
            # line that copies it, say) and for lines without message.id: the rest go
            # through `choose`, from the index alone.
            conn.execute("INSERT INTO aff_mid SELECT mh FROM usage_line WHERE scope = ? AND "
                         "mh IS NOT NULL GROUP BY mh HAVING SUM(side = 0) != 1", (scope,))
        else:
            # The usual case, decided in SQL from the index alone: a message (by its key)
            # with exactly one non-sidechain line. That line wins and the sidechain lines
            # lose, whatever their totals (rule 2). CROSS JOIN: from the few affected ids to
            # their lines, never the other way round.
            conn.execute("INSERT INTO one_main SELECT a.mh FROM aff_mid a CROSS JOIN "
                         "usage_line l ON l.scope = ? AND l.mh = a.mh GROUP BY a.mh "
                         "HAVING SUM(l.side = 0) = 1", (scope,))
            conn.execute(f"INSERT INTO flip SELECT l.id, l.side = 0, l.ts / {BUCKET_US} FROM "
                         "one_main o CROSS JOIN usage_line l ON l.scope = ? AND l.mh = o.mh "
                         "WHERE (l.side = 0) != l.win", (scope,))
        # The rest, with `choose`.
        cur = conn.execute("SELECT l.id, l.mh, l.rh, l.side, l.total, l.file, l.off, l.win, "
                           "l.ts FROM aff_mid a CROSS JOIN usage_line l "
                           "ON l.scope = ? AND l.mh = a.mh WHERE a.mh NOT IN "
                           "(SELECT mh FROM one_main) ORDER BY a.mh", (scope,))
        files: dict[int, tuple[int, int, str]] | None = None
        flips: list[tuple[int, int, int]] = []
        for _, same_message in itertools.groupby(cur, key=operator.itemgetter(1)):
            group = list(same_message)
            if len(group) == 1:         # a lone line counts (a sub-agent's call, say): no
                winners = {group[0][0]}  # tie to break, no file order to look up
            else:
                if files is None:
                    files = self._file_order()
                winners = set(cc.choose([cc.Candidate(r[0], r[2], bool(r[3]), r[4],
                                                      (*files[r[5]], r[6])) for r in group]))
            for r in group:
                win = int(r[0] in winners)
                if win != r[7]:
                    flips.append((r[0], win, r[8] // BUCKET_US))
            if len(flips) >= 8192:      # streamed: memory stays flat however many lines
                conn.executemany("INSERT INTO flip VALUES (?, ?, ?)", flips)
                flips = []
        conn.executemany("INSERT INTO flip VALUES (?, ?, ?)", flips)
        conn.execute("UPDATE usage_line SET win = 1 - win WHERE id IN (SELECT id FROM flip)")
        if not self.every_bucket:
            conn.execute("INSERT OR IGNORE INTO aff_bucket SELECT DISTINCT b FROM flip")

    def _file_order(self) -> dict[int, tuple[int, int, str]]:
        """How each file with an affected line ranks on a tie: (resumed, first timestamp,
        path)."""
        sql = "SELECT id, resumed, first_ts, path FROM usage_file WHERE scope = :s"
        if not self.cold:
            sql += (" AND id IN (SELECT l.file FROM aff_mid a CROSS JOIN usage_line l "
                    "ON l.scope = :s AND l.mh = a.mh)")
        cur = self.conn.execute(sql, {"s": self.scope})
        return {fid: (resumed, first if first is not None else 1 << 62, path)
                for fid, resumed, first, path in cur}

    def _resum(self) -> None:
        """Sum the winners again in every affected bucket (all of them after a cold run, or
        with new prices)."""
        s = self.scope
        select = (f"SELECT :s, l.ts / {BUCKET_US} AS b, l.model, COALESCE(l.session, 0), "
                  "COALESCE(l.cwd, 0), COUNT(*), SUM(l.inp), SUM(l.out), SUM(l.cw5), "
                  "SUM(l.cw1), SUM(l.cr), TOTAL(l.cost), SUM(l.cost IS NULL), MIN(l.ts), "
                  "MAX(l.ts) FROM ")
        group = " GROUP BY b, l.model, COALESCE(l.session, 0), COALESCE(l.cwd, 0)"
        if self.every_bucket:   # every line: one pass over the table, not through its index
            self.conn.execute("DELETE FROM usage_agg WHERE scope = ?", (s,))
            self.conn.execute(f"INSERT INTO usage_agg {select} usage_line l NOT INDEXED "
                              f"WHERE l.scope = :s AND l.win = 1 {group}", {"s": s})
            return
        self.conn.execute("DELETE FROM usage_agg WHERE scope = ? AND bucket IN "
                          "(SELECT b FROM aff_bucket)", (s,))
        self.conn.execute(
            f"INSERT INTO usage_agg {select} aff_bucket a JOIN usage_line l ON l.scope = :s "
            f"AND l.win = 1 AND l.ts >= a.b * {BUCKET_US} AND l.ts < (a.b + 1) * {BUCKET_US}"
            f"{group}", {"s": s})
