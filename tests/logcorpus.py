"""Realistic Claude Code transcript corpora, with the truth they were made from.

Shared by the usage tests, the ccusage agreement test and `benchmarks/usage_bench.py`.
`generate(root, ...)` writes `<root>/projects/<encoded cwd>/<session>.jsonl` files the way
Claude Code does (see /work/shared/samples/claude-code-transcript.md) and returns a
`Corpus` whose `calls` are the API calls that really happened: one per
(message.id, requestId) that must be counted once, with its final usage. Everything else in
the files is noise a correct reader must not count:

- streaming snapshots: one line per content block, early lines with a partial output count;
- sub-agent transcripts under `<session>/subagents/agent-*.jsonl` (isSidechain: true), and
  `progress` lines in the parent file that embed copies of their assistant messages;
- `/btw` side questions: a sidechain file replaying parent messages under new request ids
  (with a larger cache read), followed by its own answer (which does count);
- resumed sessions: a new file that starts with copies of an older session's lines;
- Task results whose `toolUseResult.usage` summarises a sub-agent;
- `<synthetic>` error lines, summaries, system lines, file-history snapshots;
- malformed lines (garbage, truncated JSON) and, optionally, a binary file named `.jsonl`.

Options make some calls use microsecond timestamps or non-compact JSON (spaces after `:`),
which ccusage 20 does not read; such calls are flagged `ccusage_blind`.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

MODELS_MAIN = ("claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-sonnet-4-20250514")
MODELS_SUB = ("claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929")
PROJECTS = (
    "/Users/alex/src/calsync",
    "/Users/alex/src/organized-ai-marketplace",
    "/home/dev/work/billing-api",
)
_TEXT = (
    "the retry loop should back off when the server answers 412 and re-read the etag before "
    "writing again so that no update is lost between two clients editing one calendar object "
    "while a sync is running in the background of a long session with many tool calls"
)
_WORDS = tuple(_TEXT.split())


@dataclass(frozen=True)
class Call:
    """One API call that must be counted exactly once."""

    message_id: str
    request_id: str
    model: str
    timestamp: datetime
    session_id: str
    cwd: str
    input_tokens: int
    output_tokens: int
    cache_creation_5m_tokens: int
    cache_creation_1h_tokens: int
    cache_read_tokens: int
    sidechain: bool = False
    ccusage_blind: bool = False  # written in a form ccusage 20 skips

    @property
    def cache_creation_tokens(self) -> int:
        return self.cache_creation_5m_tokens + self.cache_creation_1h_tokens


@dataclass
class Corpus:
    root: Path
    calls: list[Call] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    bad_lines: list[tuple[Path, int]] = field(default_factory=list)
    bytes_written: int = 0

    def by_date_model(self, *, ccusage_view: bool = False
                      ) -> dict[tuple[str, str], tuple[int, ...]]:
        """Four token counts per (UTC date, model), optionally without ccusage-blind calls."""
        out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for c in self.calls:
            if ccusage_view and c.ccusage_blind:
                continue
            row = out[(c.timestamp.date().isoformat(), c.model)]
            row[0] += c.input_tokens
            row[1] += c.output_tokens
            row[2] += c.cache_creation_tokens
            row[3] += c.cache_read_tokens
        return {k: tuple(v) for k, v in out.items()}


@dataclass(frozen=True)
class Features:
    streaming: bool = True
    subagents: bool = True
    progress: bool = True
    btw_replays: bool = True
    resumes: bool = True
    task_results: bool = True
    noise: bool = True               # summaries, system, snapshots, synthetic errors
    malformed: bool = True
    binary_file: bool = False
    microsecond_share: float = 0.0   # share of calls written with microsecond timestamps
    noncompact_share: float = 0.0    # share of calls written with spaces after ':' and ','
    cost_usd_share: float = 0.05     # share of calls carrying costUSD (old Claude Code)
    flat_cache_share: float = 0.1    # share of calls with only cache_creation_input_tokens
    content_scale: float = 1.0       # multiplies the size of message bodies


class _Writer:
    """One transcript file, written line by line."""

    def __init__(self, path: Path, corpus: Corpus) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.corpus = corpus
        self.fh = path.open("wb")
        self.lines = 0
        corpus.files.append(path)

    def raw(self, data: bytes) -> None:
        self.fh.write(data)
        self.fh.write(b"\n")
        self.lines += 1
        self.corpus.bytes_written += len(data) + 1

    def obj(self, obj: dict[str, object], *, spaced: bool = False) -> None:
        data = orjson.dumps(obj)
        if spaced:
            data = data.replace(b'":', b'": ').replace(b',"', b', "')
        self.raw(data)

    def close(self) -> None:
        self.fh.close()


class Generator:
    def __init__(self, root: Path, seed: int, features: Features) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.f = features
        self.corpus = Corpus(root=root)
        self._pool = " ".join(self.rng.choice(_WORDS) for _ in range(40_000))

    # -- small values ------------------------------------------------------------------
    def _id(self, prefix: str, n: int = 24) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789"
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(n))

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _text(self, mean: int) -> str:
        n = max(8, int(self.rng.expovariate(1 / (mean * self.f.content_scale))))
        n = min(n, len(self._pool) - 1)
        start = self.rng.randrange(0, len(self._pool) - n)
        return self._pool[start:start + n]

    @staticmethod
    def _ts(t: datetime, micro: bool) -> str:
        if micro:
            return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

    # -- lines -------------------------------------------------------------------------
    def _envelope(self, s: _Session, kind: str, t: datetime, *, side: bool = False,
                  micro: bool = False) -> dict[str, object]:
        return {
            "parentUuid": s.last_uuid, "isSidechain": side, "userType": "external",
            "cwd": s.cwd, "sessionId": s.session_id, "version": "2.0.37",
            "gitBranch": s.branch, "type": kind, "uuid": self._uuid(),
            "timestamp": self._ts(t, micro),
        }

    def _usage(self, call: Call, output: int, flat: bool) -> dict[str, object]:
        usage: dict[str, object] = {
            "input_tokens": call.input_tokens,
            "cache_creation_input_tokens": call.cache_creation_tokens,
            "cache_read_input_tokens": call.cache_read_tokens,
        }
        if not flat:
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": call.cache_creation_5m_tokens,
                "ephemeral_1h_input_tokens": call.cache_creation_1h_tokens,
            }
        usage["output_tokens"] = output
        usage["service_tier"] = "standard"
        return usage

    def _blocks(self) -> list[dict[str, object]]:
        blocks: list[dict[str, object]] = []
        if self.rng.random() < 0.5:
            blocks.append({"type": "thinking", "thinking": self._text(600),
                           "signature": self._id("Eu", max(8, int(300 * self.f.content_scale)))})
        if self.rng.random() < 0.7:
            blocks.append({"type": "text", "text": self._text(400)})
        blocks.append({"type": "tool_use", "id": self._id("toolu_"), "name": "Edit",
                       "input": {"file_path": "/src/app.py", "new_string": self._text(900)}})
        return blocks if self.streaming else blocks[-1:]

    @property
    def streaming(self) -> bool:
        return self.f.streaming

    def _new_call(self, s: _Session, t: datetime, model: str, *, side: bool) -> Call:
        r = self.rng
        cw = int(r.expovariate(1 / 3000))
        one_h = cw if r.random() < 0.6 else 0
        blind = (r.random() < self.f.microsecond_share) or (r.random() < self.f.noncompact_share)
        return Call(
            message_id=self._id("msg_01"), request_id=self._id("req_011C"), model=model,
            timestamp=t, session_id=s.session_id, cwd=s.cwd,
            input_tokens=r.randint(1, 40), output_tokens=r.randint(20, 4000),
            cache_creation_5m_tokens=cw - one_h, cache_creation_1h_tokens=one_h,
            cache_read_tokens=int(r.expovariate(1 / 40_000)), sidechain=side,
            ccusage_blind=blind,
        )

    def _call_lines(self, s: _Session, call: Call, *, side: bool,
                    extra: dict[str, object] | None = None) -> list[dict[str, object]]:
        """The lines Claude Code writes for one API response (one per content block)."""
        blocks = self._blocks()
        flat = self.rng.random() < self.f.flat_cache_share
        micro = call.ccusage_blind and call.message_id[-1] in "ABCDEFGHJKLMNPQRSTUVWXYZ"
        out: list[dict[str, object]] = []
        for i, block in enumerate(blocks):
            last = i == len(blocks) - 1
            partial = self.rng.randint(1, max(1, call.output_tokens // 4))
            output = call.output_tokens if last else partial
            # each block is written as it streams in: earlier snapshots, earlier times
            at = call.timestamp - timedelta(milliseconds=1317 * (len(blocks) - 1 - i))
            line = self._envelope(s, "assistant", at, side=side, micro=micro)
            line["message"] = {
                "model": call.model, "id": call.message_id, "type": "message",
                "role": "assistant", "content": [block],
                "stop_reason": "tool_use" if last else None, "stop_sequence": None,
                "usage": self._usage(call, output, flat),
            }
            line["requestId"] = call.request_id
            if extra:
                line.update(extra)
            if self.rng.random() < self.f.cost_usd_share:
                line["costUSD"] = round(call.output_tokens * 15e-6, 6)
            out.append(line)
            s.last_uuid = str(line["uuid"])
        return out

    def _emit(self, w: _Writer, line: dict[str, object], call: Call | None = None) -> None:
        spaced = bool(call and call.ccusage_blind and not call.message_id[-1].isupper())
        w.obj(line, spaced=spaced)

    # -- sessions ----------------------------------------------------------------------
    def session(self, project_dir: Path, cwd: str, start: datetime, turns: int,
                resume_from: _Session | None = None) -> _Session:
        s = _Session(session_id=self._uuid(), cwd=cwd, branch=self.rng.choice(("main", "dev")),
                     path=project_dir / "x.jsonl", history=[])
        s.path = project_dir / f"{s.session_id}.jsonl"
        w = _Writer(s.path, self.corpus)
        if resume_from is not None and self.f.resumes:
            w.obj({"type": "summary", "summary": self._text(40), "leafUuid": self._uuid()})
            for line, call in resume_from.history[-self.rng.randint(3, 12):]:
                copy = dict(line)
                copy["sessionId"] = s.session_id
                self._emit(w, copy, call)
        t = start
        for _ in range(turns):
            t = self._turn(w, s, t)
        w.close()
        return s

    def _turn(self, w: _Writer, s: _Session, t: datetime) -> datetime:
        r = self.rng
        user = self._envelope(s, "user", t)
        user["message"] = {"role": "user", "content": self._text(300)}
        w.obj(user)
        model = r.choice(MODELS_MAIN)
        for _ in range(r.randint(1, 4)):
            t += timedelta(seconds=r.uniform(2, 40), microseconds=r.randint(0, 999_999))
            call = self._new_call(s, t, model, side=False)
            self.corpus.calls.append(call)
            for line in self._call_lines(s, call, side=False):
                self._emit(w, line, call)
                s.history.append((line, call))
            result = self._envelope(s, "user", t + timedelta(seconds=1))
            body = self._text(2500)
            result["message"] = {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": self._id("toolu_"), "content": body}]}
            result["toolUseResult"] = {"stdout": body, "stderr": "", "interrupted": False}
            w.obj(result)
        if self.f.subagents and r.random() < 0.25:
            t = self._subagent(w, s, t)
        if self.f.btw_replays and r.random() < 0.05 and s.history:
            t = self._btw(s, t)
        if self.f.noise:
            self._noise(w, s, t)
        if self.f.malformed and r.random() < 0.01:
            self._malformed(w, s, t)
        return t + timedelta(minutes=r.uniform(0.5, 6))

    def _subagent(self, w: _Writer, s: _Session, t: datetime) -> datetime:
        r = self.rng
        agent = self._id("a", 16).lower()
        sub = _Writer(s.path.with_suffix("") / "subagents" / f"agent-{agent}.jsonl", self.corpus)
        tool_id = self._id("toolu_")
        total = 0
        for _ in range(r.randint(1, 5)):
            t += timedelta(seconds=r.uniform(1, 20), microseconds=r.randint(0, 999_999))
            call = self._new_call(s, t, r.choice(MODELS_SUB), side=True)
            self.corpus.calls.append(call)
            total += call.output_tokens
            for line in self._call_lines(s, call, side=True, extra={"agentId": agent}):
                self._emit(sub, line, call)
                if self.f.progress:
                    embedded = {k: line[k] for k in ("type", "message", "requestId", "uuid",
                                                     "timestamp")}
                    progress = self._envelope(s, "progress", t)
                    progress["data"] = {"message": embedded, "normalizedMessages": [],
                                        "type": "agent_progress", "prompt": "",
                                        "agentId": agent}
                    progress["toolUseID"] = "agent_msg_" + self._id("")
                    progress["parentToolUseID"] = tool_id
                    self._emit(w, progress, call)
        sub.close()
        if self.f.task_results:
            result = self._envelope(s, "user", t + timedelta(seconds=1))
            result["message"] = {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": tool_id, "content": self._text(500)}]}
            result["toolUseResult"] = {
                "status": "completed", "agentId": agent, "totalTokens": total,
                "usage": {"input_tokens": 10, "cache_creation_input_tokens": 100,
                          "cache_read_input_tokens": 5000, "output_tokens": total},
            }
            w.obj(result)
        return t

    def _btw(self, s: _Session, t: datetime) -> datetime:
        """A /btw side question: replays parent messages under new request ids, then answers."""
        r = self.rng
        name = f"agent-aside_question-{self._id('', 8)}.jsonl"
        path = s.path.with_suffix("") / "subagents" / name
        w = _Writer(path, self.corpus)
        for line, call in s.history[-r.randint(1, 4):]:
            copy = orjson.loads(orjson.dumps(line))
            copy["isSidechain"] = True
            copy["requestId"] = self._id("req_011C")
            copy["message"]["usage"]["cache_read_input_tokens"] = call.cache_read_tokens + 9000
            self._emit(w, copy, call)
        t += timedelta(seconds=r.uniform(1, 9), microseconds=r.randint(0, 999_999))
        call = self._new_call(s, t, s.history[-1][1].model, side=True)
        self.corpus.calls.append(call)
        for line in self._call_lines(s, call, side=True):
            self._emit(w, line, call)
        w.close()
        return t

    def _noise(self, w: _Writer, s: _Session, t: datetime) -> None:
        r = self.rng
        if r.random() < 0.3:
            line = self._envelope(s, "system", t)
            line.update({"subtype": "turn_duration", "durationMs": r.randint(1000, 90_000)})
            w.obj(line)
        if r.random() < 0.15:
            w.obj({"type": "file-history-snapshot", "messageId": self._uuid(),
                   "snapshot": {"trackedFileBackups": {"/src/app.py": self._text(3000)}},
                   "isSnapshotUpdate": False})
        if r.random() < 0.03:
            line = self._envelope(s, "assistant", t)
            line["isApiErrorMessage"] = True
            line["message"] = {
                "model": "<synthetic>", "id": self._uuid(), "type": "message",
                "role": "assistant", "content": [{"type": "text",
                                                  "text": "API Error: 529 overloaded"}],
                "usage": {"input_tokens": 0, "output_tokens": 0,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            }
            w.obj(line)

    def _malformed(self, w: _Writer, s: _Session, t: datetime) -> None:
        if self.rng.random() < 0.5:
            w.raw(b"this is not json \x00\x01 at all")
        else:
            call = self._new_call(s, t, MODELS_MAIN[0], side=False)
            data = orjson.dumps(self._call_lines(s, call, side=False)[-1])
            w.raw(data[: len(data) // 2])  # truncated: never counted
        self.corpus.bad_lines.append((w.path, w.lines))


@dataclass
class _Session:
    session_id: str
    cwd: str
    branch: str
    path: Path
    history: list[tuple[dict[str, object], Call]]
    last_uuid: str | None = None


def encode_cwd(cwd: str) -> str:
    """Claude Code's directory name for a working directory."""
    return "".join(c if c.isalnum() else "-" for c in cwd)


def generate(
    root: Path, *, seed: int = 1, sessions: int = 20, turns: int = 12,
    start: datetime = datetime(2026, 11, 2, 9, 0, tzinfo=UTC), days: int = 14,
    features: Features = Features(), projects: tuple[str, ...] = PROJECTS,
    target_bytes: int | None = None, keep_calls: bool = True,
) -> Corpus:
    """Write a corpus under `root/projects` and return its truth.

    With `target_bytes`, sessions are written until the corpus reaches that size
    (`sessions` is then ignored). With `keep_calls=False` the truth is not kept (1 GB runs).
    """
    g = Generator(root, seed, features)
    done: list[_Session] = []
    i = 0
    while (g.corpus.bytes_written < target_bytes) if target_bytes else (i < sessions):
        cwd = projects[i % len(projects)]
        day = g.rng.randrange(days)
        t0 = start + timedelta(days=day, hours=g.rng.uniform(0, 10))
        resume = done[-1] if done and g.rng.random() < 0.2 and done[-1].cwd == cwd else None
        pdir = root / "projects" / encode_cwd(cwd)
        s = g.session(pdir, cwd, t0, g.rng.randint(max(1, turns // 2), turns * 2), resume)
        s.history = s.history[-16:]
        done = [*done[-3:], s]
        i += 1
        if not keep_calls:
            g.corpus.calls.clear()
    if features.binary_file:
        bad = root / "projects" / encode_cwd(projects[0]) / "core.jsonl"
        bad.write_bytes(bytes(range(256)) * 8)
        g.corpus.files.append(bad)
    return g.corpus


def iter_lines(corpus: Corpus) -> Iterator[tuple[Path, bytes]]:
    for path in corpus.files:
        for raw in path.read_bytes().splitlines():
            yield path, raw


EXAMPLE_CWD = "/Users/alex/src/organized-ai-marketplace"
# Starts (America/New_York, EST after 2026-11-01) inside the example calendar's weekly
# sessions: Mon 14:00-17:00, Wed 14:00-17:00, Fri 13:00-16:00.
EXAMPLE_SESSIONS = (
    datetime(2026, 11, 2, 19, 10, tzinfo=UTC),   # Mon 2 Nov, 14:10 EST
    datetime(2026, 11, 4, 19, 5, tzinfo=UTC),    # Wed 4 Nov, 14:05 EST
    datetime(2026, 11, 6, 18, 20, tzinfo=UTC),   # Fri 6 Nov, 13:20 EST
    datetime(2026, 11, 9, 19, 30, tzinfo=UTC),   # Mon 9 Nov, 14:30 EST
    datetime(2026, 11, 18, 19, 15, tzinfo=UTC),  # Wed 18 Nov, 14:15 EST
)


def write_example_logs(root: Path) -> Corpus:
    """The small example config dir in `examples/claude-logs` (regenerate with
    `python -c "from tests.logcorpus import *; write_example_logs(Path('examples/claude-logs'))"`).
    Each session lasts well under two hours, so it stays inside its calendar window."""
    g = Generator(root, seed=2026, features=Features(malformed=False, content_scale=0.05,
                                                     cost_usd_share=0.0))
    pdir = root / "projects" / encode_cwd(EXAMPLE_CWD)
    previous = None
    for start in EXAMPLE_SESSIONS:
        previous = g.session(pdir, EXAMPLE_CWD, start, 6, previous)
    return g.corpus


def usage_line(mid: str | None, rid: str | None, output: int, *, cache_read: int = 0,
               side: bool = False, at: str = "2026-11-02T15:00:00.000Z",
               session: str = "s-1", cwd: str = "/Users/alex/src/calsync",
               model: str = "claude-sonnet-4-5-20250929", progress: bool = False) -> str:
    """One hand-made transcript line with usage (for rule-by-rule tests)."""
    message: dict[str, object] = {
        "model": model, "type": "message", "role": "assistant", "content": [],
        "usage": {"input_tokens": 3, "cache_creation_input_tokens": 10,
                  "cache_read_input_tokens": cache_read, "output_tokens": output,
                  "cache_creation": {"ephemeral_5m_input_tokens": 10,
                                     "ephemeral_1h_input_tokens": 0}},
    }
    if mid is not None:
        message["id"] = mid
    line: dict[str, object] = {"isSidechain": side, "cwd": cwd, "sessionId": session,
                               "version": "2.0.37", "gitBranch": "main", "type": "assistant",
                               "uuid": f"u-{mid}-{rid}-{output}", "timestamp": at,
                               "message": message}
    if rid is not None:
        line["requestId"] = rid
    if progress:
        embedded = {k: line[k] for k in ("type", "message", "uuid", "timestamp")}
        if rid is not None:
            embedded["requestId"] = rid
        line = {"type": "progress", "sessionId": session, "cwd": cwd, "timestamp": at,
                "data": {"type": "agent_progress", "message": embedded}}
    return orjson.dumps(line).decode()
