"""Claude Code transcripts: what one line means, how a byte range is scanned."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.keys import request_key
from calsync.sources.claude_code import (
    BadLine,
    Range,
    _line_fields,
    _usage_fields,
    parse_line,
    scan_range,
    split_ranges,
)

SESSION = "9fba9b42-3f26-4566-8913-8625e15d4ef7"


def assistant(**over):
    """A real-shaped assistant line (the format reference's line 3), with overrides."""
    line = {
        "parentUuid": "84bb9fc1", "isSidechain": False, "userType": "external",
        "cwd": "/Users/alex/src/calsync", "sessionId": SESSION, "version": "2.0.37",
        "gitBranch": "main", "type": "assistant", "uuid": "c584c1f4",
        "timestamp": "2025-11-24T14:30:12.034Z", "requestId": "req_011CUsnQR4xkBHmF3jGDPwhW",
        "message": {
            "model": "claude-sonnet-4-5-20250929", "id": "msg_01uJJMgNm2QMYS1CSsj2MVmF",
            "type": "message", "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_01", "name": "Edit", "input": {}}],
            "usage": {"input_tokens": 3, "cache_creation_input_tokens": 4835,
                      "cache_read_input_tokens": 28120,
                      "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                         "ephemeral_1h_input_tokens": 4835},
                      "output_tokens": 587, "service_tier": "standard"},
        },
    }
    for key, value in over.items():
        if key.startswith("usage_"):
            line["message"]["usage"][key[6:]] = value
        elif key.startswith("message_"):
            line["message"][key[8:]] = value
        elif value is None:
            line.pop(key, None)
        else:
            line[key] = value
    return json.dumps(line, separators=(",", ":"))


# --- one line ---------------------------------------------------------------------------------

def test_an_assistant_line_gives_its_usage_with_the_cache_split():
    u = parse_line(assistant())
    assert (u.message_id, u.request_id, u.model) == (
        "msg_01uJJMgNm2QMYS1CSsj2MVmF", "req_011CUsnQR4xkBHmF3jGDPwhW",
        "claude-sonnet-4-5-20250929")
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens) == (3, 587, 28120)
    assert (u.cache_creation_5m_tokens, u.cache_creation_1h_tokens) == (0, 4835)
    assert (u.session_id, u.cwd, u.git_branch, u.sidechain) == (
        SESSION, "/Users/alex/src/calsync", "main", False)
    assert u.record().timestamp.isoformat() == "2025-11-24T14:30:12.034000+00:00"
    assert u.total_tokens == 3 + 587 + 4835 + 28120


@pytest.mark.parametrize("line", [
    pytest.param(json.dumps({"type": "summary", "summary": "x", "leafUuid": "y"}), id="summary"),
    pytest.param(json.dumps({"type": "file-history-snapshot", "messageId": "m",
                             "snapshot": {"usage": {"input_tokens": 5}}}), id="snapshot"),
    pytest.param(assistant(message_model="<synthetic>", isApiErrorMessage=True),
                 id="synthetic-error-line"),
    pytest.param(json.dumps({
        "type": "user", "sessionId": SESSION, "timestamp": "2025-11-24T14:31:00Z",
        "message": {"role": "user", "content": [{"type": "tool_result", "content": "ok"}]},
        "toolUseResult": {"totalTokens": 9000, "usage": {"input_tokens": 10,
                                                         "output_tokens": 8990}}}),
        id="task-result-summary-of-a-subagent"),
    pytest.param(json.dumps({"type": "system", "subtype": "turn_duration", "durationMs": 5}),
                 id="system"),
    pytest.param(assistant(message_usage=None), id="assistant-without-usage"),
])
def test_lines_that_are_not_usage_records(line):
    assert parse_line(line) is None


def test_flat_cache_creation_counts_as_five_minute_writes():
    line = json.loads(assistant())
    del line["message"]["usage"]["cache_creation"]
    u = parse_line(json.dumps(line))
    assert (u.cache_creation_5m_tokens, u.cache_creation_1h_tokens) == (4835, 0)


def test_the_split_wins_over_the_flat_total_as_ccusage_counts_it():
    u = parse_line(assistant(usage_cache_creation={"ephemeral_5m_input_tokens": 0,
                                                   "ephemeral_1h_input_tokens": 0}))
    assert u.cache_creation_5m_tokens + u.cache_creation_1h_tokens == 0


def test_a_sidechain_line_is_marked():
    assert parse_line(assistant(isSidechain=True, agentId="a07414")).sidechain is True


def test_a_progress_line_gives_the_embedded_sub_agent_message():
    inner = json.loads(assistant(isSidechain=None, sessionId=None, cwd=None, gitBranch=None))
    embedded = {k: inner[k] for k in ("type", "message", "requestId", "uuid", "timestamp")}
    line = json.dumps({"type": "progress", "sessionId": SESSION, "cwd": "/w/p",
                       "gitBranch": "dev", "timestamp": "2025-11-24T15:00:00.000Z",
                       "data": {"type": "agent_progress", "message": embedded}})
    u = parse_line(line)
    assert (u.message_id, u.output_tokens, u.session_id, u.cwd, u.git_branch) == (
        "msg_01uJJMgNm2QMYS1CSsj2MVmF", 587, SESSION, "/w/p", "dev")
    assert u.record().timestamp.isoformat() == "2025-11-24T14:30:12.034000+00:00"


@pytest.mark.parametrize(("stamp", "expected"), [
    pytest.param("2025-11-24T14:30:12.123456Z", "2025-11-24T14:30:12.123456+00:00",
                 id="microseconds"),
    pytest.param("2025-11-24T14:30:12Z", "2025-11-24T14:30:12+00:00", id="no-fraction"),
    pytest.param("2025-11-24T09:30:12.5-05:00", "2025-11-24T14:30:12.500000+00:00",
                 id="offset"),
])
def test_timestamps_in_any_iso_form_are_read_as_utc(stamp, expected):
    assert parse_line(assistant(timestamp=stamp)).record().timestamp.isoformat() == expected


@pytest.mark.parametrize("stamp", ["2025-11-24T14:30:12.034Z", "2025-11-24t14:30:12.034z",
                                   "2025-11-24T14:30:12.0340005Z", "2025-11-24T15:30:12+01:00",
                                   "2025-11-24 14:30:12.034"])
def test_a_timestamp_reads_the_same_on_the_fast_and_the_slow_path(stamp):
    fast = parse_line(assistant(timestamp=stamp))
    slow = parse_line(assistant(timestamp=stamp, usage_service_tier=None,
                                usage_output_tokens=None))     # a null count: the slow path
    assert fast.ts_us // 1000 == 1763994612034 or fast.ts_us == 1763994612000000
    assert slow.ts_us == fast.ts_us


def test_bytes_that_are_not_utf8_in_a_value_the_rules_read_make_a_bad_line():
    line = assistant(message_model="claude-x").encode().replace(b"claude-x", b"claude-\xff")
    with pytest.raises(BadLine, match="not valid JSON"):
        parse_line(line)


def test_bytes_that_are_not_utf8_in_the_content_do_not_stop_the_count_as_for_ccusage():
    line = assistant(message_content=[{"type": "text", "text": "MARK"}]).encode()
    assert parse_line(line.replace(b"MARK", b"bad \xff byte")).output_tokens == 587


def test_a_line_nested_too_deep_is_a_bad_line_not_a_crash():
    deep = b'{"type":"assistant","x":' + b"[" * 100_000 + b"]" * 100_000 + b',"usage":1}'
    with pytest.raises(BadLine, match="not valid JSON"):
        parse_line(deep)


def test_non_compact_json_is_read():
    spaced = json.dumps(json.loads(assistant()), indent=None)   # ", " and ": "
    assert '"usage": {' in spaced
    assert parse_line(spaced).output_tokens == 587


def test_cost_written_on_the_line_is_kept():
    assert parse_line(assistant(costUSD=0.0123)).cost_usd == 0.0123


def test_fast_mode_is_a_model_of_its_own_like_ccusage():
    assert parse_line(assistant(usage_speed="fast")).model == "claude-sonnet-4-5-20250929-fast"


def test_empty_ids_count_as_missing():
    u = parse_line(assistant(requestId="", message_id=""))
    assert (u.request_id, u.message_id) == (None, None)


@pytest.mark.parametrize(("line", "message"), [
    pytest.param('{"type":"assistant","message":{"usage":{"input_tokens":3', "not valid JSON",
                 id="truncated"),
    pytest.param("garbage \x00\x01", "not valid JSON", id="garbage"),
    pytest.param("[1, 2]", "not a JSON object", id="not-an-object"),
    pytest.param(assistant(timestamp="24/11/2025 14:30"), "timestamp not understood",
                 id="strange-timestamp"),
    pytest.param(assistant(timestamp=1732458612), "timestamp is not a string",
                 id="numeric-timestamp"),
    pytest.param(assistant(usage_output_tokens=-5), "usage.output_tokens", id="negative"),
    pytest.param(assistant(usage_input_tokens="3"), "usage.input_tokens", id="string-count"),
])
def test_broken_lines_raise_bad_line_naming_the_problem(line, message):
    with pytest.raises(BadLine, match=message):
        parse_line(line)


# --- scanning ---------------------------------------------------------------------------------

def _write(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end)
    return path


def _scan(path: Path, start: int = 0) -> tuple[list[tuple], list[tuple[int, str]], int, bool]:
    size = path.stat().st_size
    res = scan_range(Range(1, str(path), start, size, True))
    return res.lines, res.problems, res.end, res.open_tail


def test_scan_reports_malformed_lines_by_offset_and_counts_the_rest(tmp_path):
    good = assistant()
    path = _write(tmp_path / "s.jsonl", [good, "not json", good[:60], "",
                                         assistant(requestId="req_2")])
    lines, problems, end, open_tail = _scan(path)
    assert len(lines) == 2
    offsets = [off for off, _ in problems]
    assert offsets == [len(good) + 1, len(good) + 10]
    assert end == path.stat().st_size and not open_tail


def test_a_complete_last_line_without_newline_counts(tmp_path):
    path = _write(tmp_path / "s.jsonl", [assistant(), assistant(requestId="req_2")], end="")
    lines, _, end, open_tail = _scan(path)
    assert len(lines) == 2 and end == path.stat().st_size and open_tail


def test_a_range_keeps_the_largest_snapshot_of_each_call(tmp_path):
    path = _write(tmp_path / "s.jsonl", [assistant(usage_output_tokens=10),
                                         assistant(usage_output_tokens=587),
                                         assistant(usage_output_tokens=587, uuid="later"),
                                         assistant(usage_output_tokens=20)])
    lines, _, _, _ = _scan(path)
    assert [(line[1], line[11]) for line in lines] == [
        (len(assistant(usage_output_tokens=10)) + 1, 587)]


def test_a_half_written_last_line_is_left_for_the_next_run(tmp_path):
    line = assistant()
    path = tmp_path / "s.jsonl"
    path.write_text(line + "\n" + line[:100])
    lines, problems, end, _ = _scan(path)
    assert (len(lines), problems, end) == (1, [], len(line) + 1)


@settings(max_examples=30, deadline=None)
@given(piece=st.integers(min_value=1, max_value=3000))
def test_any_split_into_ranges_reads_every_line_exactly_once(tmp_path_factory, piece):
    path = tmp_path_factory.mktemp("split") / "s.jsonl"
    lines = [assistant(requestId=f"req_{i}", usage_output_tokens=i) for i in range(12)]
    lines.insert(5, "garbage")
    _write(path, lines)
    size = path.stat().st_size
    results = [scan_range(r) for r in split_ranges(1, str(path), 0, size, piece)]
    got = sorted(line[1] for res in results for line in res.lines)
    whole = scan_range(Range(1, str(path), 0, size, True))
    assert got == [line[1] for line in whole.lines]
    assert sorted(p for res in results for p in res.problems) == whole.problems
    assert max(results, key=lambda r: r.start).end == size


def test_a_scan_reports_lines_msgspec_cannot_read_and_counts_the_rest(tmp_path):
    bad_utf8 = assistant(requestId="r1", message_model="claude-x").encode().replace(
        b"claude-x", b"claude-\xff")
    deep = b'{"type":"assistant","x":' + b"[" * 50_000 + b"]" * 50_000 + b',"usage":1}'
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join([bad_utf8, deep, assistant(requestId="r2").encode()]) + b"\n")
    lines, problems, end, _ = _scan(path)
    assert [line[3] for line in lines] == [request_key("r2")]
    assert [off for off, _ in problems] == [0, len(bad_utf8) + 1]
    assert end == path.stat().st_size


def test_long_lines_are_read_and_overlong_ones_skipped_and_reported(tmp_path, monkeypatch):
    import calsync.sources.claude_code as cc

    monkeypatch.setattr(cc, "READ_BLOCK", 256)
    monkeypatch.setattr(cc, "MAX_LINE", 2048)
    long = assistant(message_content=[{"type": "text", "text": "x" * 1000}])
    huge = assistant(message_content=[{"type": "text", "text": "x" * 3000}], requestId="r2")
    path = _write(tmp_path / "s.jsonl", [assistant(requestId="r1"), long, huge,
                                         assistant(requestId="r3")])
    lines, problems, end, _ = _scan(path)
    assert sorted(line[3] for line in lines) == sorted(
        request_key(rid) for rid in ("r1", "r3", "req_011CUsnQR4xkBHmF3jGDPwhW"))
    assert [msg for _, msg in problems] == ["line longer than 0 MiB skipped"]
    assert end == path.stat().st_size


def test_a_vanished_file_is_an_error_not_a_crash(tmp_path):
    res = scan_range(Range(1, str(tmp_path / "gone.jsonl"), 0, 10, True))
    assert res.error and res.lines == []


def _unpack(batch) -> list[tuple]:
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.deserialize(batch.lines)
    return db.execute("SELECT * FROM line").fetchall()


@pytest.mark.parametrize("count", [0, 1, 49, 50, 51, 123])
def test_a_packed_batch_holds_every_line_in_order(count):
    from calsync.sources.claude_code import LINE_COLUMNS, Batch, pack

    rows = [(*range(i, i + len(LINE_COLUMNS) - 1), None) for i in range(count)]
    batch = Batch([], pack(rows, {7: "sonnet"}, [], []))
    assert _unpack(batch) == rows


@pytest.mark.parametrize("block", [1, 7, 1 << 20])
def test_line_numbers_count_lines_whatever_the_block(tmp_path, block):
    from calsync.sources.claude_code import line_numbers

    lines = [b"{}", b"", b'{"a": 1}', b"x" * 30, b"{}"]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    starts = [sum(len(x) + 1 for x in lines[:i]) for i in range(len(lines))]
    assert line_numbers(str(path), starts, block) == [1, 2, 3, 4, 5]
    assert line_numbers(str(path), [starts[3], 10_000], block) == [4, 6]   # past the end
    assert line_numbers(str(tmp_path / "gone"), [0, 5], block) == [None, None]

def test_a_pool_scans_every_range_once_however_many_batches_wait(tmp_path):
    from calsync.sources.claude_code import scan_ranges, start_pool

    lines = [assistant(requestId=f"req_{i}", usage_output_tokens=i) for i in range(40)]
    path = _write(tmp_path / "s.jsonl", lines)
    size = path.stat().st_size
    ranges = split_ranges(1, str(path), 0, size, 500)      # dozens of batches, 4 in flight
    serial = [scan_range(r) for r in ranges]
    pool = start_pool(2, None)
    try:
        pooled = list(scan_ranges(ranges, batch_bytes=400, pool=pool))
    finally:
        pool.terminate()
    assert len(ranges) > 20 and len(pooled) > 10
    assert sorted(r.start for b in pooled for r in b.results) == [r.start for r in ranges]
    assert sorted(row for b in pooled for row in _unpack(b)) == sorted(
        row for r in serial for row in r.lines)



@given(sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=300))
def test_batches_hold_every_range_once_biggest_first(sizes):
    from calsync.sources.claude_code import Range, batches

    out = batches([Range(i, f"f{i}", 0, size, True) for i, size in enumerate(sizes)], 16_000)
    assert sorted(r.key for b in out for r in b) == list(range(len(sizes)))
    flat = [r.stop for b in out for r in b]
    assert flat == sorted(flat, reverse=True)


def test_the_last_batches_are_small_so_the_scanners_finish_together():
    from calsync.sources.claude_code import Range, batches

    out = batches([Range(i, f"f{i}", 0, 1000, True) for i in range(400)], 16_000)
    sizes = [sum(r.stop for r in b) for b in out]
    assert sizes[:10] == [16_000] * 10
    assert all(size <= 2000 for size in sizes[-8:])
    assert sum(sizes) == 400_000


# --- the fast path (msgspec) gives exactly what the rule (orjson, dicts) gives --------------

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.integers(2**62, 2**66)
    | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([
        "", "x", "assistant", "progress", "user", "<synthetic>", "fast",
        "2025-11-24T14:30:12.034Z", "2025-11-24t14:30:12z", "2025-11-24 14:30:12",
        "1969-12-31T23:59:59Z", "2025-11-24", "20251124T143012Z", "not a time"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(
        st.sampled_from(["message", "usage", "type", "id"]), inner, max_size=2),
    max_leaves=4)
_PLACES = [("type",), ("requestId",), ("isSidechain",), ("timestamp",), ("sessionId",),
           ("cwd",), ("gitBranch",), ("costUSD",), ("message",), ("message", "id"),
           ("message", "model"), ("message", "usage"), ("message", "usage", "input_tokens"),
           ("message", "usage", "output_tokens"), ("message", "usage", "speed"),
           ("message", "usage", "cache_read_input_tokens"),
           ("message", "usage", "cache_creation_input_tokens"),
           ("message", "usage", "cache_creation"),
           ("message", "usage", "cache_creation", "ephemeral_1h_input_tokens"),
           ("data",), ("data", "message"), ("data", "message", "timestamp"),
           ("data", "message", "message", "usage", "output_tokens")]


def _outcome(read, raw):
    try:
        return "ok", read(raw)
    except BadLine as exc:
        return "bad line", str(exc)
    except orjson.JSONDecodeError:
        return "not json", None


@settings(max_examples=400, deadline=None)
@given(progress=st.booleans(), changes=st.lists(st.tuples(st.sampled_from(_PLACES),
                                                          _JSON_VALUES), max_size=3))
def test_the_fast_path_reads_every_line_as_the_rule_does(progress, changes):
    line = json.loads(assistant())
    if progress:
        line = {"type": "progress", "sessionId": SESSION, "timestamp": line["timestamp"],
                "data": {"type": "agent_progress", "message": line}}
    for place, value in changes:
        node = line
        for key in place[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[place[-1]] = value
    raw = json.dumps(line).encode()
    assert _outcome(_line_fields, raw) == _outcome(
        lambda r: _usage_fields(orjson.loads(r)), raw)


@pytest.mark.parametrize("calls", [1, 2, 60])          # under, around and over HASH_BYTES
@pytest.mark.parametrize("block", [1 << 20, 256])      # the file in one read, or in many
def test_a_scans_file_facts_are_the_hashes_the_ledger_checks_later(tmp_path, monkeypatch,
                                                                   calls, block):
    import calsync.sources.claude_code as cc

    monkeypatch.setattr(cc, "READ_BLOCK", block)
    monkeypatch.setattr(cc, "_BUFFER", bytearray())
    path = _write(tmp_path / "s.jsonl", [assistant(requestId=f"r{i}") for i in range(calls)])
    res = scan_range(Range(1, str(path), 0, path.stat().st_size, True))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert (res.facts.head, res.facts.tail) == cc.file_hashes(fd, res.end)
    finally:
        os.close(fd)
