"""Claude Code's transcripts as a usage source: what a line means, and how to scan them.

Two layers (house style §12), after `calsync.sources.transcripts` has found the files:

- `parse_line(text)` (pure): one line → `LineUsage` (or None for a line that is not a usage
  record), raising `BadLine` for a line that is not JSON or carries a broken value. The rule
  is written once, over the parsed line's dicts (`_usage_fields`); the scanner reads lines
  through `_line_fields`, which decodes with msgspec only the keys the rule reads and hands
  any line it cannot describe exactly to the rule (a test checks they always agree).
- `scan_range(...)`: the complete lines of one byte range of one file → candidate usage lines
  and problems; `scan_batch` packs a batch's findings into one sqlite blob, cheap to send
  between processes, and `scan_ranges()` runs batches on all cores. De-duplication across
  lines and files happens in `calsync.ledger`.

Rules (ccusage 20's loader, see the README's "Usage accounting"): a usage line is an
`assistant` line with `message.usage`, or a `progress` line embedding one in `data.message`
(a copy of a sub-agent line; de-duplication makes it harmless). `<synthetic>` lines,
summaries, snapshots and `toolUseResult` usage are not usage. Cache creation is split from
`usage.cache_creation.ephemeral_5m/1h_input_tokens` when present, else
`cache_creation_input_tokens` counts as 5-minute writes.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NamedTuple

import msgspec
import orjson

from ..keys import request_key, text_key
from ..records import UsageRecord
from .transcripts import FileStat

USAGE_MARKER = b'"usage"'
READ_BLOCK = 4 << 20          # bytes read at a time: memory stays flat whatever the file size
MAX_LINE = 16 << 20           # longer lines are skipped (ccusage #873: a 734 MB snapshot line)


class BadLine(ValueError):
    """A line that should be usable and is not; the scanner reports it as path:line."""


class LineUsage(NamedTuple):
    """One candidate usage line, before de-duplication (positional for speed)."""

    message_id: str | None
    request_id: str | None
    sidechain: bool
    ts_us: int                  # UTC, microseconds since the epoch
    session_id: str | None
    cwd: str | None
    git_branch: str | None
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_5m_tokens: int
    cache_creation_1h_tokens: int
    cache_read_tokens: int
    cost_usd: float | None      # `costUSD` written on the line (old Claude Code versions)

    @property
    def total_tokens(self) -> int:
        return (self.input_tokens + self.output_tokens + self.cache_creation_5m_tokens
                + self.cache_creation_1h_tokens + self.cache_read_tokens)

    def record(self) -> UsageRecord:
        return UsageRecord(
            timestamp=datetime.fromtimestamp(self.ts_us / 1e6, UTC),
            session_id=self.session_id or "", cwd=self.cwd, git_branch=self.git_branch,
            model=self.model, input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_creation_5m_tokens=self.cache_creation_5m_tokens,
            cache_creation_1h_tokens=self.cache_creation_1h_tokens,
            cache_read_tokens=self.cache_read_tokens, cost_usd=self.cost_usd,
            message_id=self.message_id, request_id=self.request_id,
        )


# --- one line ------------------------------------------------------------------------------

def _int(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise BadLine(f"usage.{key} is not a token count: {value!r}")
    return value


def _ts_us(value: object) -> int:
    """A line's timestamp in UTC microseconds: RFC 3339 (as msgspec reads it, in C), else any
    ISO 8601 form Python reads; without an offset it is UTC."""
    if type(value) is not str:
        raise BadLine(f"timestamp is not a string: {value!r}")
    try:
        moment = _decode_moment(msgspec.json.encode(value))
    except msgspec.DecodeError:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise BadLine(f"timestamp not understood: {value[:40]!r}") from None
    us = _moment_us(moment)
    if us < 0:
        raise BadLine(f"timestamp before 1970: {value[:40]!r}")
    return us


def _moment_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND         # exact: integer arithmetic throughout


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


_decode_moment = msgspec.json.Decoder(datetime).decode


def _checked_counts(usage: dict[str, Any], split: dict[str, Any] | None
                    ) -> tuple[int, int, int, int, int]:
    if split is not None:
        cw5 = _int(split, "ephemeral_5m_input_tokens")
        cw1 = _int(split, "ephemeral_1h_input_tokens")
    else:
        cw5, cw1 = _int(usage, "cache_creation_input_tokens"), 0
    return (_int(usage, "input_tokens"), _int(usage, "output_tokens"), cw5, cw1,
            _int(usage, "cache_read_input_tokens"))


def _usage_fields(obj: object) -> tuple[Any, ...] | None:
    """The usage a parsed transcript line carries, as a `LineUsage`-shaped tuple, or None if
    it carries none (pure). Raises BadLine when the line should carry usage but a value is
    broken."""
    if type(obj) is not dict:
        raise BadLine("not a JSON object")
    kind = obj.get("type")
    src: Any = obj
    if kind != "assistant":
        if kind != "progress":        # user lines (toolUseResult.usage), summaries, snapshots
            return None
        data = obj.get("data")        # a copy of a sub-agent line, embedded in data.message
        src = data.get("message") if type(data) is dict else None
        if type(src) is not dict:
            return None
    message = src.get("message")
    usage = message.get("usage") if type(message) is dict else None
    if type(usage) is not dict:
        return None
    model = message.get("model")
    if model == "<synthetic>":        # made locally (API errors, usage limits), not billed
        return None
    if type(model) is not str or not model:
        model = "unknown"
    get = usage.get
    if get("speed") == "fast":
        model += "-fast"
    split = get("cache_creation")
    if type(split) is dict:
        cw5 = split.get("ephemeral_5m_input_tokens", 0)
        cw1 = split.get("ephemeral_1h_input_tokens", 0)
    else:
        split = None
        cw5, cw1 = get("cache_creation_input_tokens", 0), 0
    inp, out = get("input_tokens", 0), get("output_tokens", 0)
    cr = get("cache_read_input_tokens", 0)
    if not (type(inp) is int and type(out) is int and type(cw5) is int and type(cw1) is int
            and type(cr) is int and min(inp, out, cw5, cw1, cr) >= 0):
        inp, out, cw5, cw1, cr = _checked_counts(usage, split)   # null, a string, a minus
    mid, rid = message.get("id"), src.get("requestId")
    session, cwd, branch = src.get("sessionId"), src.get("cwd"), src.get("gitBranch")
    if src is not obj:
        session, cwd, branch = (session or obj.get("sessionId"), cwd or obj.get("cwd"),
                                branch or obj.get("gitBranch"))
    cost = src.get("costUSD")
    return (
        mid if type(mid) is str and mid else None,
        rid if type(rid) is str and rid else None,
        src.get("isSidechain") is True, _ts_us(src.get("timestamp")),
        session if type(session) is str and session else None,
        cwd if type(cwd) is str and cwd else None,
        branch if type(branch) is str and branch else None,
        model, inp, out, cw5, cw1, cr,
        float(cost) if type(cost) is float or type(cost) is int else None,
    )


# --- one line, fast: typed decoding of only the keys the rules read -------------------------
#
# msgspec decodes a line straight into these structs and skips every other key (the message
# content, most of each line) without building Python objects for it. Anything the structs
# do not describe exactly (a null or a string where a count belongs, an id that is a
# number, a data.message that is not an object...) raises a DecodeError, and the line goes
# through `orjson` and `_usage_fields` instead, which give the same answer or the precise
# BadLine. A count must fit in 63 bits here; a larger one takes the slow path too. One
# difference is kept on purpose: bytes that are not UTF-8 inside a value the rules do not
# read (the message content) do not stop msgspec, and the line counts, as it does for
# ccusage, which reads transcripts as text; orjson refuses such a line.

_Count = Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]
# gc=False: they hold no cycles, and a scan decodes hundreds of thousands of them.


class _Split(msgspec.Struct, gc=False):
    ephemeral_5m_input_tokens: _Count = 0
    ephemeral_1h_input_tokens: _Count = 0


class _Usage(msgspec.Struct, gc=False):
    input_tokens: _Count = 0
    output_tokens: _Count = 0
    cache_creation_input_tokens: _Count = 0
    cache_read_input_tokens: _Count = 0
    cache_creation: _Split | None = None
    speed: Any = None


class _Message(msgspec.Struct, gc=False):
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None


class _Call(msgspec.Struct, gc=False):
    """The keys of an assistant line (or of the copy a progress line embeds)."""

    message: _Message | None = None
    requestId: str | None = None
    isSidechain: Any = None
    timestamp: datetime | None = None       # RFC 3339; another form takes the slow path
    sessionId: str | None = None
    cwd: str | None = None
    gitBranch: str | None = None
    costUSD: float | None = None


class _Data(msgspec.Struct, gc=False):
    message: _Call | None = None


class _Line(_Call):
    type: str | None = None
    data: _Data | None = None


_decode_line = msgspec.json.Decoder(_Line).decode


def _line_fields(raw: bytes | memoryview | str) -> tuple[Any, ...] | None:
    """`_usage_fields(orjson.loads(raw))`, mostly without building the line's objects.

    Raises orjson.JSONDecodeError for a line that is not JSON and BadLine for a broken value.
    """
    try:
        line = _decode_line(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return _usage_fields(orjson.loads(raw))     # the rule, or the precise error
    kind = line.type
    src: _Call = line
    if kind != "assistant":
        if kind != "progress" or line.data is None or line.data.message is None:
            return None
        src = line.data.message
    message = src.message
    if message is None:
        return None
    usage = message.usage
    if usage is None:
        return None
    model = message.model
    if model == "<synthetic>":
        return None
    if not model:
        model = "unknown"
    if usage.speed == "fast":
        model += "-fast"
    split = usage.cache_creation
    if split is not None:
        cw5, cw1 = split.ephemeral_5m_input_tokens, split.ephemeral_1h_input_tokens
    else:
        cw5, cw1 = usage.cache_creation_input_tokens, 0
    session, cwd, branch = src.sessionId, src.cwd, src.gitBranch
    if src is not line:
        session, cwd, branch = (session or line.sessionId, cwd or line.cwd,
                                branch or line.gitBranch)
    moment = src.timestamp              # `_moment_us`, inline (it is read on every line)
    ts = -1 if moment is None or moment.tzinfo is None else (moment - _EPOCH) // _MICROSECOND
    if ts < 0:                          # missing, before 1970 or without an offset: the
                                        # slow path says which, or reads it as UTC
        return _usage_fields(orjson.loads(raw))
    return (message.id or None, src.requestId or None, src.isSidechain is True,
            ts, session or None, cwd or None, branch or None, model,
            usage.input_tokens, usage.output_tokens, cw5, cw1, usage.cache_read_input_tokens,
            src.costUSD)


def parse_line(text: str | bytes) -> LineUsage | None:
    """One transcript line → its usage, None when it has none; BadLine when it is broken."""
    try:
        fields = _line_fields(text)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"not valid JSON ({exc.msg})") from None
    return None if fields is None else LineUsage._make(fields)


# --- scanning byte ranges ------------------------------------------------------------------

class Range(NamedTuple):
    """Lines starting in [start, stop) of one file; `eof` when stop is the file's end."""

    key: int                    # the caller's handle for the file
    path: str
    start: int
    stop: int
    eof: bool
    stat: FileStat | None = None  # given for a new file read whole: the scanner writes its
                                  # ledger row (table `file` of the batch)


class RangeResult(NamedTuple):
    key: int
    start: int
    end: int                    # just after the last line consumed
    open_tail: bool             # the last line consumed had no newline (it parsed, at EOF)
    lines: list[Row]            # the best line per (message.id, requestId, sidechain)
    problems: list[tuple[int, str]]  # (offset of the line, message)
    error: str | None           # the file could not be read (vanished, permission)
    first_ts: int | None = None  # the earliest timestamp among the lines
    facts: FileFacts | None = None  # for the range that ends the file


class FileFacts(NamedTuple):
    """What the ledger keeps to recognise a file next time (see `calsync.ledger`)."""

    head: bytes                 # hash of the first HASH_BYTES bytes (fewer in a small file)
    tail: bytes                 # hash of the HASH_BYTES bytes before the end of what was read
    resumed: bool               # it starts with a `summary` line: a resumed session


# One kept line, in this order (`LINE_COLUMNS` names them): the file's key, offset, the keys
# (`calsync.keys`) of message.id and requestId, sidechain, ts_us, the keys of session, cwd,
# branch and model, input, output, cache write 5m, cache write 1h, cache read, costUSD,
# cost, total tokens
Row = tuple[Any, ...]
LINE_COLUMNS = ("file", "off", "mh", "rh", "side", "ts", "session", "cwd", "branch", "model",
                "inp", "out", "cw5", "cw1", "cr", "line_cost", "cost", "total")
Coster = Callable[[str, int, int, int, int, int], float | None]
HASH_BYTES = 1024                 # enough to tell a rewrite (a line holds ids and times),
                                  # cheap to hash for each of thousands of new files


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _head_and_tail(fd: int, end: int, block: bytearray | None = None) -> tuple[bytes, bytes]:
    """The first and the last HASH_BYTES bytes before `end` (fewer in a small file), from
    `block` when it holds the file's first `end` bytes, else read from the file."""
    n = min(HASH_BYTES, end)
    if block is not None:
        return bytes(block[:n]), bytes(block[end - n:end])
    head = os.pread(fd, n, 0)
    return head, head if end <= HASH_BYTES else os.pread(fd, n, end - n)


def file_hashes(fd: int, end: int) -> tuple[bytes, bytes]:
    """Hashes of the first and of the last HASH_BYTES bytes before `end`."""
    head, tail = _head_and_tail(fd, end)
    return _digest(head), _digest(tail)


def _facts(fd: int, end: int, block: bytearray | None = None) -> FileFacts:
    """The file's facts up to `end` (see `_head_and_tail` for `block`)."""
    head, tail = _head_and_tail(fd, end, block)
    first = head.split(b"\n", 1)[0].replace(b" ", b"")
    return FileFacts(_digest(head), _digest(tail), first.startswith(b'{"type":"summary"'))


_NO_TS = 1 << 63                  # later than any timestamp


class _Lines:
    """The usage lines of one range, keeping only the best per (message.id, requestId,
    sidechain): the largest token total, the first on a tie (ledger rule 1)."""

    def __init__(self, key: int, cost: Coster | None) -> None:
        self.key = key
        self.cost = cost
        self.best: dict[tuple[str, str | None, bool], tuple[Any, ...]] = {}
        self.loose: list[tuple[Any, ...]] = []   # lines without message.id all count
        self.earliest = _NO_TS                   # the earliest timestamp (`first_ts`)

    @property
    def first_ts(self) -> int | None:
        return None if self.earliest == _NO_TS else self.earliest

    def add(self, offset: int, u: tuple[Any, ...]) -> None:
        if u[3] < self.earliest:
            self.earliest = u[3]
        total = u[8] + u[9] + u[10] + u[11] + u[12]
        if u[0] is None:
            self.loose.append((offset, total, u))
            return
        key = (u[0], u[1], u[2])
        old = self.best.get(key)
        if old is None or total > old[1]:
            self.best[key] = (offset, total, u)

    def rows(self, names: NameKeys) -> list[Row]:
        """A `Row` per line kept, naming session, cwd, branch and model by their keys."""
        out: list[Row] = []
        append, key, cost, k = out.append, self.key, self.cost, names
        for offset, total, u in (*self.best.values(), *self.loose):
            mid, rid, side, ts, session, cwd, branch, model, inp, o, cw5, cw1, cr, paid = u
            price = paid
            if price is None and cost is not None:
                price = cost(model, inp, o, cw5, cw1, cr)
            append((key, offset, None if mid is None else text_key(mid),
                    None if rid is None else request_key(rid),
                    1 if side else 0,       # not a bool: sqlite3 would look for an adapter
                    ts, k[session], k[cwd], k[branch], k[model], inp, o, cw5, cw1, cr, paid,
                    price, total))
        return out


class NameKeys(dict[str | None, int | None]):
    """Name → key (`calsync.keys`), each name hashed once per batch; None stays None."""

    def __missing__(self, name: str | None) -> int | None:
        key = self[name] = None if name is None else text_key(name)
        return key

    def table(self) -> dict[int, str]:
        """Key → name, for the names seen."""
        return {key: name for name, key in self.items() if name is not None and key is not None}


class Candidate(NamedTuple):
    """One stored line, as the de-duplication rule sees it."""

    id: int
    request_id: int | None      # the key of requestId
    sidechain: bool
    total: int
    order: tuple[Any, ...]      # smaller wins a tie: (resumed file, file start, path, offset)


def choose(lines: Sequence[Candidate]) -> list[int]:
    """The ids that count among the lines of one message.id (pure; `calsync.ledger` rules):

    non-sidechain lines win; among them one per requestId, the largest total (then the
    smallest `order`); when all are sidechain lines, one of them, chosen the same way.
    """
    if len(lines) == 1:
        return [lines[0].id]
    main = [c for c in lines if not c.sidechain]
    if not main:
        return [min(lines, key=_rank).id]
    best: dict[int | None, Candidate] = {}
    for c in main:
        held = best.get(c.request_id)
        if held is None or _rank(c) < _rank(held):
            best[c.request_id] = c
    return [c.id for c in best.values()]


def _rank(c: Candidate) -> tuple[Any, ...]:
    return (-c.total, c.order)


def _scan_block(buf: bytearray, size: int, base: int, stop: int, out: _Lines,
                problems: list[tuple[int, str]]) -> int:
    """Scan the complete lines in `buf[:size]` (read at file offset `base`) that start
    before `stop`; returns the buffer position after the last line consumed."""
    find = buf.find
    rfind = buf.rfind             # the marker is near the end of a usage line: look from there
    fields = _line_fields
    add = out.add
    view = memoryview(buf)
    pos = 0
    limit = min(stop - base, size)
    while pos < limit:
        end = find(b"\n", pos, size)
        if end < 0:
            break
        if rfind(USAGE_MARKER, pos, end) >= 0:
            try:
                found = fields(view[pos:end])
            except orjson.JSONDecodeError as exc:
                problems.append((base + pos, f"not valid JSON ({exc.msg})"))
            except BadLine as exc:
                problems.append((base + pos, str(exc)))
            else:
                if found is not None:
                    add(base + pos, found)
        elif end > pos and (buf[pos] != 0x7B or buf[end - 1] != 0x7D):
            _check_plain(view[pos:end], base + pos, problems)
        pos = end + 1
    return pos


def _check_plain(line: memoryview, offset: int, problems: list[tuple[int, str]]) -> None:
    """A line without usage that does not look like one JSON object: report it if it is not."""
    if not bytes(line).strip():
        return
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        problems.append((offset, f"not valid JSON ({exc.msg})"))


_BUFFER = bytearray()             # reused by every scan in this process: no page faults


def scan_range(rng: Range, cost: Coster | None = None,
               names: NameKeys | None = None) -> RangeResult:
    """Read one range block by block and return its usage lines and problems; the keys of
    the names in them are kept in `names`."""
    global _BUFFER
    lines = _Lines(rng.key, cost)
    problems: list[tuple[int, str]] = []
    try:
        fd = os.open(rng.path, os.O_RDONLY)
    except OSError as exc:
        return RangeResult(rng.key, rng.start, rng.start, False, [], [], exc.strerror or str(exc))
    try:
        if len(_BUFFER) != READ_BLOCK:
            _BUFFER = bytearray(READ_BLOCK)
        buf = _BUFFER
        pos = _first_line_start(fd, rng.start)
        size, at = 0, -1
        while pos < rng.stop:
            size, at = os.preadv(fd, [buf], pos), pos
            if not size:
                break
            used = _scan_block(buf, size, pos, rng.stop, lines, problems)
            pos += used
            if used == 0 and size == len(buf):      # one line longer than the buffer
                if len(buf) >= MAX_LINE:
                    pos = _skip_line(fd, pos, bytes(buf[:64]), problems)
                else:
                    buf = bytearray(len(buf) * 2)   # for this file only
            elif size < len(buf):                   # the end of the file: `used` is the rest
                break
        open_tail = False
        if rng.eof and size and pos < rng.stop:
            pos, open_tail = _last_line(bytes(buf[used:size]), pos, lines)
        facts = None
        if rng.eof:
            facts = _facts(fd, pos, buf if at == 0 and pos <= size else None)
    except OSError as exc:
        return RangeResult(rng.key, rng.start, rng.start, False, [], [], exc.strerror or str(exc))
    finally:
        os.close(fd)
    return RangeResult(rng.key, rng.start, pos, open_tail,
                       lines.rows(NameKeys() if names is None else names), problems, None,
                       lines.first_ts, facts)


def _last_line(data: bytes, pos: int, lines: _Lines) -> tuple[int, bool]:
    """A last line without a newline, at `pos`: taken if it is complete JSON (the offset
    after it, True); else it may still be being written, and is left for the next run."""
    if not data:
        return pos, False
    try:
        found = _line_fields(data)
    except (orjson.JSONDecodeError, BadLine):
        return pos, False
    if found is not None:
        lines.add(pos, found)
    return pos + len(data), True


def _skip_line(fd: int, pos: int, head: bytes, problems: list[tuple[int, str]]) -> int:
    """Skip a line longer than MAX_LINE (a huge file-history snapshot, say) without holding it."""
    if not head.startswith(b'{"type":"file-history-snapshot"'):
        problems.append((pos, f"line longer than {MAX_LINE >> 20} MiB skipped"))
    return _after_newline(fd, pos + MAX_LINE)


def _first_line_start(fd: int, start: int) -> int:
    """`start` if a line starts there, else just after the next newline."""
    return 0 if start == 0 else _after_newline(fd, start - 1)


def _after_newline(fd: int, pos: int) -> int:
    """Just after the first newline at or after `pos` (or the end of the file)."""
    while True:
        block = os.pread(fd, 65_536, pos)
        if not block:
            return pos
        i = block.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(block)


def split_ranges(key: int, path: str, start: int, size: int, piece: int) -> list[Range]:
    """Cut [start, size) into pieces of about `piece` bytes (each line in exactly one)."""
    cuts = list(range(start, size, piece)) or [start]
    return [Range(key, path, a, b, b == size)
            for a, b in zip(cuts, [*cuts[1:], size], strict=True)]


MAX_WORKERS = 4                   # each forked worker counts the parent's pages in its RSS


def scan_processes() -> int:
    """How many processes scan: one per core, at most MAX_WORKERS. The load is not
    subtracted: a busy machine shares its cores among processes, so more of them still get
    more of it (measured on 2 cores at load 1.6: 1 GB cold in 3.7-4.3 s with two workers,
    4.4-4.7 s with one process)."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


class Batch(NamedTuple):
    """The results of a batch of ranges; what they found travels together in `lines`."""

    results: list[RangeResult]  # each with `lines` empty and at most one of its problems
    lines: bytes                # a serialized sqlite database (`pack`)
    whole: Sequence[tuple[int, int]] = ()  # (key, size) of the new files read whole whose
                                           # ledger rows are in `lines`: no result for them


# A new file's ledger row, as a scanner that read it whole makes it (`calsync.ledger`).
FILE_COLUMNS = ("id", "path", "dev", "ino", "size", "mtime_ns", "offset", "head", "tail",
                "open_tail", "first_ts", "resumed")
# The batch's tables: its lines; the names they hold by key; its problems, numbered when the
# range starts the file; and the ledger rows of the new files it read whole. Every batch
# creates them in this order before it writes a row, so each table has the same root page in
# every batch: the ledger's cached statements read each batch it deserializes by those pages
# (SQLite sees the same schema, and does not prepare them again).
_BATCH_TABLES = (
    f"CREATE TABLE line ({', '.join(LINE_COLUMNS)})",
    "CREATE TABLE name (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
    "CREATE TABLE problem (file, off, line, message)",
    f"CREATE TABLE file ({', '.join(FILE_COLUMNS)})",
)


def pack(rows: Sequence[Row], names: Mapping[int, str], problems: Sequence[tuple[Any, ...]],
         files: Sequence[tuple[Any, ...]]) -> bytes:
    """A batch's findings as a serialized sqlite database (`_BATCH_TABLES`).

    This is how they travel from a scanner process to the ledger: one bytes object, which
    the ledger attaches and copies with an INSERT ... SELECT per table, instead of a pickled
    tuple per line and an executemany (each costs the parent a few microseconds per line).
    """
    import sqlite3

    # sqlite3 looks for an adapter for each None and bytes it binds and, finding none, raises
    # and clears an AttributeError (1.5% of a scan); with the identity registered, it is a
    # dict lookup, and they bind as before (NULL, BLOB).
    sqlite3.register_adapter(type(None), _as_is)
    sqlite3.register_adapter(bytes, _as_is)
    db = sqlite3.connect(":memory:")
    try:
        for statement in _BATCH_TABLES:
            db.execute(statement)
        _insert_rows(db, "line", len(LINE_COLUMNS), rows)
        db.executemany("INSERT INTO name VALUES (?, ?)", names.items())
        db.executemany("INSERT INTO problem VALUES (?, ?, ?, ?)", problems)
        db.executemany(f"INSERT INTO file VALUES ({', '.join('?' * len(FILE_COLUMNS))})", files)
        db.commit()
        return db.serialize()
    finally:
        db.close()


def _as_is(value: Any) -> Any:
    return value


ROWS_PER_INSERT = 50


def _insert_rows(db: Any, table: str, width: int, rows: Sequence[Row]) -> None:
    """Insert rows ROWS_PER_INSERT at a time, with one multi-row VALUES: a third less time
    than one statement per row (measured: 45 against 80 ms for 40,000 lines)."""
    one = f"({', '.join('?' * width)})"
    whole = len(rows) - len(rows) % ROWS_PER_INSERT
    if whole:
        many = f"INSERT INTO {table} VALUES {', '.join([one] * ROWS_PER_INSERT)}"
        db.executemany(many, (tuple(itertools.chain.from_iterable(rows[at:at + ROWS_PER_INSERT]))
                              for at in range(0, whole, ROWS_PER_INSERT)))
    db.executemany(f"INSERT INTO {table} VALUES {one}", rows[whole:])


def scan_batch(ranges: Sequence[Range], cost: Coster | None = None) -> Batch:
    """Scan the ranges and pack what they found."""
    names = NameKeys()
    results, rows, problems, files = [], [], [], []
    whole: list[tuple[int, int]] = []
    for rng in ranges:
        res = scan_range(rng, cost, names)
        rows += res.lines
        if res.problems:
            lines: Sequence[int | None] = [None] * len(res.problems)
            if rng.start == 0 and res.error is None:
                lines = line_numbers(rng.path, [off for off, _ in res.problems])
            problems += [(rng.key, off, line, msg)
                         for (off, msg), line in zip(res.problems, lines, strict=True)]
        if rng.stat is not None and res.error is None and res.facts is not None:
            files.append((rng.key, rng.path, *rng.stat, res.end, res.facts.head,
                          res.facts.tail, int(res.open_tail), res.first_ts,
                          int(res.facts.resumed)))
            whole.append((rng.key, res.end))
        else:
            results.append(RangeResult(res.key, res.start, res.end, res.open_tail, [],
                                       res.problems[:1], res.error, res.first_ts, res.facts))
    return Batch(results, pack(rows, names.table(), problems, files), whole)


def line_numbers(path: str, offsets: Sequence[int],
                 block: int = READ_BLOCK) -> list[int | None]:
    """The line number (from 1) at each of these ascending byte offsets of a file; None for
    all when it cannot be read. Read `block` bytes at a time: a problem near the end of a
    large transcript does not load the transcript."""
    out: list[int | None] = []
    try:
        with open(path, "rb") as fh:
            line, at = 1, 0
            for off in offsets:
                while at < off:
                    chunk = fh.read(min(block, off - at))
                    if not chunk:
                        break
                    line += chunk.count(b"\n")
                    at += len(chunk)
                out.append(line)
    except OSError:
        return [None] * len(offsets)
    return out


_WORKER_COST: Coster | None = None


def _init_worker(cost: Coster | None) -> None:
    global _WORKER_COST
    _WORKER_COST = cost


def _scan_batch(batch: list[tuple[Any, ...]]) -> Batch:
    """In a scanner process: the batch comes as plain tuples (a namedtuple pickles through
    Python code, and a first scan sends thousands of ranges)."""
    return scan_batch([Range._make(r) for r in batch], _WORKER_COST)


def _submit(pool: Any, batch: list[Range]) -> Any:
    return pool.apply_async(_scan_batch, ([tuple(r) for r in batch],))


def start_pool(workers: int, cost: Coster | None) -> Any:
    """`workers` forked scanner processes (None for fewer than 2). Start them before the
    parent holds much: a forked child counts the parent's pages in its own memory."""
    if workers < 2:
        return None
    import multiprocessing
    import sys

    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
    return ctx.Pool(workers, initializer=_init_worker, initargs=(cost,))


def batches(ranges: Sequence[Range], batch_bytes: int) -> list[list[Range]]:
    """The ranges in batches of about `batch_bytes`, the biggest ranges first; the last
    eighth of the bytes in smaller and smaller batches, so that the scanners finish together
    (the ledger's work after the scan waits for the last one)."""
    todo = sorted(ranges, key=lambda r: r.stop - r.start, reverse=True)
    left = sum(r.stop - r.start for r in todo)
    out: list[list[Range]] = []
    size = limit = 0
    for r in todo:
        if not out or size >= limit:
            out.append([])
            size = 0
            limit = max(min(batch_bytes, left // 8), batch_bytes // 16)
        out[-1].append(r)
        size += r.stop - r.start
        left -= r.stop - r.start
    return out


def scan_ranges(ranges: Sequence[Range], *, cost: Coster | None = None, workers: int = 0,
                batch_bytes: int = 16 << 20, pool: Any = None) -> Iterator[Batch]:
    """Scan every range, in batches of about `batch_bytes`, on `workers` processes when it
    pays off (0: `scan_processes()`), or on `pool` (from `start_pool`, made with the same
    `cost`) when given.

    Batches come as they are done, at most two per worker in flight, so memory stays flat
    however many there are.
    """
    total = sum(r.stop - r.start for r in ranges)
    if pool is None:
        workers = workers or scan_processes()
    todo = iter(batches(ranges, batch_bytes))
    if (pool is None and workers < 2) or total < 2 * batch_bytes or len(ranges) < 2:
        for batch in todo:
            yield scan_batch(batch, cost)
        return
    own = pool is None
    if own:
        pool = start_pool(workers, cost)
    try:
        flying = deque(_submit(pool, b)
                       for b in itertools.islice(todo, 2 * pool._processes))
        while flying:
            done = flying.popleft().get()
            for batch in itertools.islice(todo, 1):
                flying.append(_submit(pool, batch))
            yield done
    finally:
        if own:
            pool.terminate()
