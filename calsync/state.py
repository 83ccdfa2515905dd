"""The local state database: one sqlite file, a schema version, and its migrations.

This is the only module that opens the state database. It lives in the platformdirs user
state dir for "calsync" (`CALSYNC_STATE_DIR` or the config's `state_dir` override it, see
`paths.state_dir`) as `state.sqlite3`.

Migrations: `MIGRATIONS[i]` (SQL, or a function of the connection when SQL alone cannot
do it) brings the schema from version i to i+1. Append new ones at the end (another
feature's tables go in a new migration); never edit one that has shipped. The version is
kept in the one-row table `schema_version`. A database newer than this calsync
is refused rather than guessed at.

Tables of the usage ledger (migration 1; `calsync.ledger` reads and writes them):

usage_scope    one set of Claude Code `projects` dirs read together (scopes never mix)
usage_file     per transcript: identity, size, offset after the last line read, hashes
usage_line     the best line per (file, message.id, requestId, sidechain); `win` marks the
               lines counted after de-duplication across files: the usage records; `mh`
               is a 64-bit hash of message.id, the key to find a message's lines (since
               migration 4 `rh` holds requestId's key, and neither id is kept as text)
usage_problem  malformed lines (path:line) still present in the files
usage_agg      winners summed per 15-minute bucket, model, session and working directory
usage_manual   records added with `calsync log`
usage_scope.listing (migration 4) a digest of the listing (files, sizes, times) the ledger
               last matched: a run that finds the same one compares nothing else
usage_name     (migration 4) sessions, directories, branches and models, by the key
               (`calsync.keys`) that usage_line and usage_agg hold instead of the text;
               in usage_agg, 0 stands for none

Migration 3 indexes the ledger's lines by file. Migration 4 keys names (below).

Tables of sync (migration 2; `calsync.syncing` reads and writes them), per calendar
`location` (the .ics path or the collection URL):

sync_collection  the RFC 6578 sync token of the last run
sync_object      etag and text per href as last read or written (text NULL: no session in it)
sync_override    the hash of the plan calsync last wrote into each override (href,
                 RECURRENCE-ID): equal to the override's plan now means calsync's, so it
                 follows its series; different means the person changed it
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import ConfigError

FILENAME = "state.sqlite3"
BUSY_TIMEOUT_MS = 30_000          # how long a write waits for another run's transaction
# The usage ledger's line indexes; `calsync.ledger` drops and rebuilds them around a first,
# bulk load (building an index once is cheaper than growing it row by row).
USAGE_LINE_INDEXES = {
    "usage_line_mh": "CREATE INDEX usage_line_mh ON usage_line (scope, mh, side)",  # 4
    "usage_line_ts": "CREATE INDEX usage_line_ts ON usage_line (scope, ts)",
    "usage_line_file": "CREATE INDEX usage_line_file ON usage_line (file)",   # migration 3
}

MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    # 1: the usage ledger
    """
    CREATE TABLE usage_scope (
        id INTEGER PRIMARY KEY,
        dirs TEXT NOT NULL UNIQUE,
        prices TEXT
    );
    CREATE TABLE usage_file (
        id INTEGER PRIMARY KEY,
        scope INTEGER NOT NULL REFERENCES usage_scope(id),
        path TEXT NOT NULL,
        dev INTEGER NOT NULL, ino INTEGER NOT NULL,
        size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
        offset INTEGER NOT NULL DEFAULT 0,
        head BLOB, tail BLOB,
        open_tail INTEGER NOT NULL DEFAULT 0,
        first_ts INTEGER,
        resumed INTEGER NOT NULL DEFAULT 0,
        UNIQUE (scope, path)
    );
    CREATE TABLE usage_line (
        id INTEGER PRIMARY KEY,
        scope INTEGER NOT NULL,
        file INTEGER NOT NULL,
        off INTEGER NOT NULL,
        mid TEXT, rid TEXT,
        side INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        session TEXT, cwd TEXT, branch TEXT,
        model TEXT NOT NULL,
        inp INTEGER NOT NULL, out INTEGER NOT NULL,
        cw5 INTEGER NOT NULL, cw1 INTEGER NOT NULL, cr INTEGER NOT NULL,
        line_cost REAL,
        cost REAL,
        total INTEGER NOT NULL,
        mh INTEGER,
        win INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX usage_line_mh ON usage_line (scope, mh);
    CREATE INDEX usage_line_ts ON usage_line (scope, ts);
    CREATE TABLE usage_problem (
        file INTEGER NOT NULL,
        off INTEGER NOT NULL,
        line INTEGER,
        message TEXT NOT NULL
    );
    CREATE INDEX usage_problem_file ON usage_problem (file);
    CREATE TABLE usage_agg (
        scope INTEGER NOT NULL,
        bucket INTEGER NOT NULL,
        model TEXT NOT NULL,
        session TEXT NOT NULL,
        cwd TEXT NOT NULL,
        n INTEGER NOT NULL,
        inp INTEGER NOT NULL, out INTEGER NOT NULL,
        cw5 INTEGER NOT NULL, cw1 INTEGER NOT NULL, cr INTEGER NOT NULL,
        cost REAL NOT NULL,
        unpriced INTEGER NOT NULL,
        first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
        PRIMARY KEY (scope, bucket, model, session, cwd)
    ) WITHOUT ROWID;
    CREATE TABLE usage_manual (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        model TEXT NOT NULL,
        project TEXT,
        inp INTEGER NOT NULL, out INTEGER NOT NULL,
        cw5 INTEGER NOT NULL, cw1 INTEGER NOT NULL, cr INTEGER NOT NULL,
        cost REAL,
        note TEXT
    );
    """,
    # 2: sync
    """
    CREATE TABLE sync_collection (
        location TEXT PRIMARY KEY,
        token TEXT
    );
    CREATE TABLE sync_object (
        location TEXT NOT NULL,
        href TEXT NOT NULL,
        etag TEXT,
        text TEXT,
        PRIMARY KEY (location, href)
    );
    CREATE TABLE sync_override (
        location TEXT NOT NULL,
        href TEXT NOT NULL,
        recurrence_id TEXT NOT NULL,
        plan_hash TEXT NOT NULL,
        PRIMARY KEY (location, href, recurrence_id)
    );
    """,
    # 3: the lines of one file found without reading them all (a file re-read or grown)
    """
    CREATE INDEX IF NOT EXISTS usage_line_file ON usage_line (file);
    """,
    # 4: names by key (see _keyed_names, below: it is defined after this table)
    lambda conn: _keyed_names(conn),
)


def _keyed_names(conn: sqlite3.Connection) -> None:
    """Migration 4: the ledger keeps sessions, directories, branches and models once, in
    `usage_name`, and refers to them by key (`calsync.keys`); message.id and requestId are
    kept as their keys only (`mh`, which it had, and `rh`). A line takes half the space,
    and a cold scan of a large history writes, indexes and sums that much less. The message
    index also holds `side`, so the usual de-duplication is decided from the index alone."""
    from .keys import request_key, text_key

    conn.create_function("calsync_key", 1, lambda t: None if t is None else text_key(t),
                         deterministic=True)
    conn.create_function("calsync_request_key", 1,
                         lambda t: None if t is None else request_key(t), deterministic=True)
    for statement in _KEYED_NAMES_SQL.split(";"):
        if statement.strip():
            conn.execute(statement)


_LINE_COLUMNS = ("id, scope, file, off, mh, rh, side, ts, session, cwd, branch, model, inp, "
                 "out, cw5, cw1, cr, line_cost, cost, total, win")
_AGG_SUMS = "n, inp, out, cw5, cw1, cr, cost, unpriced, first_ts, last_ts"
_KEYED_NAMES_SQL = f"""
    CREATE TABLE usage_name (
        id INTEGER PRIMARY KEY,
        text TEXT NOT NULL
    );
    INSERT OR IGNORE INTO usage_name SELECT calsync_key(t), t FROM (
        SELECT session AS t FROM usage_line UNION SELECT cwd FROM usage_line
        UNION SELECT branch FROM usage_line UNION SELECT model FROM usage_line
        UNION SELECT session FROM usage_agg UNION SELECT cwd FROM usage_agg
        UNION SELECT model FROM usage_agg) WHERE t IS NOT NULL AND t != '';
    CREATE TABLE usage_line_keyed (
        id INTEGER PRIMARY KEY,
        scope INTEGER NOT NULL,
        file INTEGER NOT NULL,
        off INTEGER NOT NULL,
        mh INTEGER, rh INTEGER,
        side INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        session INTEGER, cwd INTEGER, branch INTEGER,
        model INTEGER NOT NULL,
        inp INTEGER NOT NULL, out INTEGER NOT NULL,
        cw5 INTEGER NOT NULL, cw1 INTEGER NOT NULL, cr INTEGER NOT NULL,
        line_cost REAL,
        cost REAL,
        total INTEGER NOT NULL,
        win INTEGER NOT NULL DEFAULT 1
    );
    INSERT INTO usage_line_keyed ({_LINE_COLUMNS})
        SELECT id, scope, file, off, mh, calsync_request_key(rid), side, ts, calsync_key(session),
               calsync_key(cwd), calsync_key(branch), calsync_key(model), inp, out, cw5, cw1, cr,
               line_cost, cost, total, win FROM usage_line;
    DROP TABLE usage_line;
    ALTER TABLE usage_line_keyed RENAME TO usage_line;
    CREATE INDEX usage_line_mh ON usage_line (scope, mh, side);
    CREATE INDEX usage_line_ts ON usage_line (scope, ts);
    CREATE INDEX usage_line_file ON usage_line (file);
    CREATE TABLE usage_agg_keyed (
        scope INTEGER NOT NULL,
        bucket INTEGER NOT NULL,
        model INTEGER NOT NULL,
        session INTEGER NOT NULL,
        cwd INTEGER NOT NULL,
        n INTEGER NOT NULL,
        inp INTEGER NOT NULL, out INTEGER NOT NULL,
        cw5 INTEGER NOT NULL, cw1 INTEGER NOT NULL, cr INTEGER NOT NULL,
        cost REAL NOT NULL,
        unpriced INTEGER NOT NULL,
        first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
        PRIMARY KEY (scope, bucket, model, session, cwd)
    ) WITHOUT ROWID;
    INSERT INTO usage_agg_keyed
        SELECT scope, bucket, calsync_key(model),
               CASE session WHEN '' THEN 0 ELSE calsync_key(session) END,
               CASE cwd WHEN '' THEN 0 ELSE calsync_key(cwd) END, {_AGG_SUMS} FROM usage_agg;
    DROP TABLE usage_agg;
    ALTER TABLE usage_agg_keyed RENAME TO usage_agg;
    ALTER TABLE usage_scope ADD COLUMN listing BLOB
"""


def schema_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, path: str = FILENAME) -> None:
    """Bring the schema up to date, one migration per transaction."""
    current = schema_version(conn)
    if current > len(MIGRATIONS):
        raise ConfigError(
            f"the state database has schema version {current}; this calsync knows "
            f"{len(MIGRATIONS)}", path=path, hint="upgrade calsync, or point CALSYNC_STATE_DIR "
            "elsewhere",
        )
    for version in range(current, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) == version:    # another process may have migrated meanwhile
                step = MIGRATIONS[version]
                if callable(step):
                    step(conn)
                else:
                    for statement in step.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version VALUES (?)", (version + 1,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


MIN_SQLITE = (3, 36)              # RETURNING, UPDATE ... FROM, and serialize/deserialize


def open_state(state_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) the state database in `state_dir`, migrated.

    The connection is in autocommit mode: callers open their own transactions
    (`BEGIN IMMEDIATE` for one exclusive write per run, as vdirsyncer's status does).
    """
    path = state_dir / FILENAME
    if sqlite3.sqlite_version_info < MIN_SQLITE or not hasattr(sqlite3.Connection, "serialize"):
        raise ConfigError(f"this Python's SQLite ({sqlite3.sqlite_version}) is too old: calsync "
                          f"needs {'.'.join(map(str, MIN_SQLITE))} or newer", path=str(path),
                          hint="install calsync with a Python built against a newer SQLite")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the state database: {exc}", path=str(path),
                          hint="set CALSYNC_STATE_DIR to a writable directory") from None
    try:
        # 16 KiB pages (a new database; one that exists keeps its own): a first scan of a
        # large history writes, indexes and checkpoints fewer, larger pages (measured: 0.1 s
        # of 3.1 s on 1 GB; warm runs no different)
        conn.execute("PRAGMA page_size = 16384")
        _set_journal_mode(conn, "wal")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, str(path))
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ConfigError(f"not a usable state database: {exc}", path=str(path),
                          hint="move it away; calsync will start a new one") from None
    return conn


def _set_journal_mode(conn: sqlite3.Connection, mode: str) -> bool:
    """Switch the database's journal mode; False when another connection's lock stops it (a
    switch does not wait: it fails at once with SQLITE_BUSY)."""
    try:
        return str(conn.execute(f"PRAGMA main.journal_mode = {mode}").fetchone()[0]) == mode
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
            raise
        return False


@contextlib.contextmanager
def unlogged(conn: sqlite3.Connection) -> Iterator[bool]:
    """For one large write into a database nobody else has open: its pages go to the file
    once, instead of to the write-ahead log, where every read of the write looks them up,
    and again to the file at the checkpoint.

    `calsync.ledger` uses it for a first scan of the logs into an empty ledger (measured on
    1 GB, 10 interleaved runs each: 3.42 s against 3.59 s). The database leaves WAL mode for
    a rollback journal (synchronous FULL, as that mode needs to be safe), and goes back when
    the block ends. Yields False, and changes nothing, when another connection has the
    database open. Meanwhile, another process opening it waits for the write to end (busy
    timeout), where in WAL mode it would have read the empty ledger. When the way back fails
    (another connection has opened it since, say), the next `open_state` takes it.
    """
    if not _set_journal_mode(conn, "delete"):
        yield False
        return
    conn.execute("PRAGMA synchronous = FULL")
    try:
        yield True
    finally:
        with contextlib.suppress(sqlite3.Error):     # never hides what the block raised
            conn.execute("PRAGMA synchronous = NORMAL")
            _set_journal_mode(conn, "wal")
