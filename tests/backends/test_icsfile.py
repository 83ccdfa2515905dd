"""The .ics file backend: the contract, plus what a person's own exported file needs.

Someone else's events must come out byte for byte as they went in, writes must survive a
crash or a second run, and a broken file must be named in one line.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from hypothesis import example, given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event

from calsync.backends import Backend
from calsync.backends.icsfile import IcsFileBackend
from calsync.errors import CalendarParseError, LockedError, PreconditionFailed
from calsync.model import CalendarObject
from tests.backends.contract import BERLIN, BackendContract, single_event

SESSION_UID = "calsync-session-7f3a@calsync.test"
SERIES_UID = "4kq2v0n1m9s8r7t6u5w4x3y2z1_R20261207T080000@google.com"

# A Google Calendar export: CRLF, folded at 75 octets (the ATTENDEE line is folded in the
# middle of a two-byte character's neighbour), X-WR-* headers, a VTIMEZONE, a VALARM.
# The series' DESCRIPTION is folded at 60 octets, as some other clients do: it must stay so.
GOOGLE_EXPORT = ("""BEGIN:VCALENDAR
PRODID:-//Google Inc//Google Calendar 70.9054//EN
VERSION:2.0
CALSCALE:GREGORIAN
METHOD:PUBLISH
X-WR-CALNAME:Work
X-WR-TIMEZONE:Europe/Berlin
""" + BERLIN + """BEGIN:VEVENT
DTSTART;TZID=Europe/Berlin:20261207T090000
DTEND;TZID=Europe/Berlin:20261207T093000
RRULE:FREQ=WEEKLY;BYDAY=MO
DTSTAMP:20261201T101010Z
UID:""" + SERIES_UID + """
CREATED:20260901T080000Z
DESCRIPTION:Weekly sync. Agenda: <a href="https://docs.google.com/docume
 nt/d/1abcdefghijk/edit">notes</a><br>Bring your updates\\, please.
LAST-MODIFIED:20260902T080000Z
LOCATION:Room 4\\, Building B
SEQUENCE:0
STATUS:CONFIRMED
SUMMARY:Team standup
TRANSP:OPAQUE
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:This is an event reminder
TRIGGER:-P0DT0H10M0S
END:VALARM
END:VEVENT
BEGIN:VEVENT
DTSTART:20261208T130000Z
DTEND:20261208T150000Z
DTSTAMP:20261201T101010Z
UID:""" + SESSION_UID + """
DESCRIPTION:Project: calsync\\nSession Type: Implementation\\n\\nTOKEN BUDGET:
 \\nTotal: 100000 tokens\\n- Sonnet 4.5: 90000 tokens\\n- Haiku 3.5: 10000 tok
 ens
SUMMARY:calsync: backends
X-CLAUDE-PROJECT:calsync
X-CLAUDE-TOKEN-BUDGET-TOTAL:100000
END:VEVENT
BEGIN:VEVENT
DTSTART;VALUE=DATE:20261225
DTEND;VALUE=DATE:20261226
DTSTAMP:20261201T101010Z
UID:0123456789abcdef@google.com
ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=Jürgen
  Müller;X-NUM-GUESTS=0:mailto:juergen@example.com
SUMMARY:Weihnachten 🎄
TRANSP:TRANSPARENT
END:VEVENT
END:VCALENDAR
""").replace("\n", "\r\n")


def write_export(path: Path, text: str = GOOGLE_EXPORT) -> bytes:
    data = text.encode("utf-8")
    path.write_bytes(data)
    return data


def block_of(data: bytes, uid: str) -> tuple[bytes, bytes, bytes]:
    """(before, the VEVENTs of `uid`, after), found by plain byte search."""
    line = f"UID:{uid}\r\n".encode()
    start = data.rindex(b"BEGIN:VEVENT", 0, data.index(line))
    end = data.index(b"END:VEVENT\r\n", data.rindex(line)) + len(b"END:VEVENT\r\n")
    return data[:start], data[start:end], data[end:]


def with_property(text: str, name: str, value: str) -> str:
    cal = Calendar.from_ical(text)
    for event in cal.walk("VEVENT"):
        event.add(name, value)
    return cal.to_ical().decode("utf-8")


class TestIcsFileBackend(BackendContract):
    """Starting from no file at all: the first create makes it."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> IcsFileBackend:
        return IcsFileBackend(tmp_path / "calendar.ics")

    @pytest.fixture
    def make_backend(self, tmp_path: Path):
        return lambda: IcsFileBackend(tmp_path / "calendar.ics")


class TestIcsFileBackendInAnLfFile(BackendContract):
    """Starting from an existing LF-only file that holds a VTIMEZONE and no events."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> IcsFileBackend:
        path = tmp_path / "exported.ics"
        path.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Apple Inc.//macOS 15//EN\n"
                        + BERLIN + "END:VCALENDAR\n", encoding="utf-8")
        return IcsFileBackend(path)

    @pytest.fixture
    def make_backend(self, backend: IcsFileBackend):
        return lambda: IcsFileBackend(backend.path)

    def test_the_file_stays_lf_only(self, backend: IcsFileBackend) -> None:
        backend.create(single_event("lf@calsync.test"), uid="lf@calsync.test")
        data = backend.path.read_bytes()
        assert b"\r\n" not in data
        assert data.count(b"BEGIN:VTIMEZONE") == 1


def test_is_a_backend(tmp_path: Path) -> None:
    assert isinstance(IcsFileBackend(tmp_path / "x.ics"), Backend)


# --- someone else's events --------------------------------------------------------------


def test_a_put_changes_only_the_bytes_of_that_event(tmp_path: Path) -> None:
    path = tmp_path / "work.ics"
    before, _, after = block_of(write_export(path), SESSION_UID)
    backend = IcsFileBackend(path)
    obj = backend.get(SESSION_UID)
    backend.put(CalendarObject(obj.href, obj.etag, with_property(
        obj.text, "X-CLAUDE-ACTUAL-TOKENS-TOTAL", "74500")), etag=obj.etag)

    data = path.read_bytes()
    assert data.startswith(before)
    assert data.endswith(after)
    new_before, written, new_after = block_of(data, SESSION_UID)
    assert b"X-CLAUDE-ACTUAL-TOKENS-TOTAL:74500\r\n" in written
    assert (new_before, new_after) == (before, after)


def test_adding_an_override_keeps_the_series_master_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "work.ics"
    _, master, _ = block_of(write_export(path), SERIES_UID)
    backend = IcsFileBackend(path)
    obj = backend.get(SERIES_UID)
    cal = Calendar.from_ical(obj.text)
    override = Event()
    for name in ("UID", "SUMMARY", "DTSTAMP"):
        override.add(name, cal.walk("VEVENT")[0][name])
    berlin = ZoneInfo("Europe/Berlin")
    override.add("RECURRENCE-ID", datetime(2026, 12, 14, 9, 0, tzinfo=berlin))
    override.add("DTSTART", datetime(2026, 12, 14, 9, 0, tzinfo=berlin))
    override.add("DTEND", datetime(2026, 12, 14, 9, 45, tzinfo=berlin))
    override.add("X-CLAUDE-STATUS", "completed")
    cal.add_component(override)
    backend.put(CalendarObject(obj.href, obj.etag, cal.to_ical().decode()), etag=obj.etag)

    data = path.read_bytes()
    assert master in data, "the master's own folding and CRLFs are kept"
    assert data.count(b"RECURRENCE-ID;TZID=Europe/Berlin:20261214T090000\r\n") == 1
    assert data.count(b"BEGIN:VTIMEZONE") == 1
    assert [h for h, _ in backend.list()].count(SERIES_UID) == 1


def test_get_is_a_calendar_of_its_own_with_the_zone_it_uses(tmp_path: Path) -> None:
    path = tmp_path / "work.ics"
    write_export(path)
    text = IcsFileBackend(path).get(SERIES_UID).text
    cal = Calendar.from_ical(text)
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert str(cal["X-WR-TIMEZONE"]) == "Europe/Berlin"
    starts = [e["DTSTART"].dt for e in recurring_ical_events.of(cal).between(
        datetime(2026, 12, 7), datetime(2026, 12, 22))]
    assert [s.isoformat() for s in starts] == [
        "2026-12-07T09:00:00+01:00", "2026-12-14T09:00:00+01:00", "2026-12-21T09:00:00+01:00"]
    assert "VTIMEZONE" not in IcsFileBackend(path).get("0123456789abcdef@google.com").text


def test_read_all_gives_every_object_from_one_read(tmp_path: Path) -> None:
    path = tmp_path / "work.ics"
    write_export(path)
    backend = IcsFileBackend(path)
    everything = backend.read_all()
    assert [o.href for o in everything] == [
        SERIES_UID, SESSION_UID, "0123456789abcdef@google.com"]
    assert everything == backend.get_many([o.href for o in everything])
    assert backend.read_calendar_text() == GOOGLE_EXPORT


def test_a_zone_the_file_lacks_is_added_once(tmp_path: Path) -> None:
    path = tmp_path / "work.ics"
    write_export(path)
    backend = IcsFileBackend(path)
    ny = ("BEGIN:VTIMEZONE\nTZID:America/New_York\nBEGIN:STANDARD\nDTSTART:19701101T020000\n"
          "TZOFFSETFROM:-0400\nTZOFFSETTO:-0500\nEND:STANDARD\nEND:VTIMEZONE\n")
    event = single_event("ny@calsync.test").replace(
        "DTSTART:20261207T090000Z", "DTSTART;TZID=America/New_York:20261207T090000").replace(
        "BEGIN:VEVENT", ny.replace("\n", "\r\n") + "BEGIN:VEVENT")
    href, etag = backend.create(event, uid="ny@calsync.test")
    backend.put(CalendarObject(href, etag, event.replace("Session", "Moved")), etag=etag)
    data = path.read_bytes()
    assert data.count(b"TZID:America/New_York\r\n") == 1
    assert data.index(b"TZID:America/New_York") < data.index(f"UID:{SERIES_UID}".encode())


def test_events_without_a_uid_are_kept_but_not_listed(tmp_path: Path) -> None:
    path = tmp_path / "old.ics"
    no_uid = "BEGIN:VEVENT\nDTSTART:20261201T100000Z\nSUMMARY:Legacy\nEND:VEVENT\n"
    path.write_text(f"BEGIN:VCALENDAR\nVERSION:2.0\n{no_uid}END:VCALENDAR\n")
    backend = IcsFileBackend(path)
    assert backend.list() == []
    backend.create(single_event("new@calsync.test"), uid="new@calsync.test")
    assert no_uid in path.read_text()


def fold(line: str, width: int | None) -> str:
    if width is None:
        return line
    return "\n ".join(line[i:i + width] for i in range(0, len(line), width))


foreign_events = st.lists(st.tuples(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=120),
    st.sampled_from([75, 60, 30, None]),
), max_size=4)


@settings(max_examples=40, deadline=None)
@example(before=[("line\u2028separator and next\x85line, no colon", 75)], after=[],
         newline="\r\n", bom=True)
@given(before=foreign_events, after=foreign_events, newline=st.sampled_from(["\r\n", "\n"]),
       bom=st.booleans())
def test_foreign_events_keep_their_bytes_whatever_they_look_like(
    before: list[tuple[str, int | None]], after: list[tuple[str, int | None]], newline: str,
    bom: bool,
) -> None:
    def event(n: int, summary: str, width: int | None) -> str:
        return (f"BEGIN:VEVENT\nUID:foreign-{n}\nDTSTART:20261201T100000Z\n"
                f"{fold('SUMMARY:' + summary, width)}\nEND:VEVENT\n")

    head = "\ufeff" * bom + "BEGIN:VCALENDAR\nVERSION:2.0\nX-WR-CALNAME:Mine\n"
    prefix = head + "".join(event(n, *e) for n, e in enumerate(before))
    suffix = "".join(event(n + 10, *e) for n, e in enumerate(after)) + "END:VCALENDAR\n"
    session = single_event(SESSION_UID, "Before")
    session = session[session.index("BEGIN:VEVENT"):session.index("END:VCALENDAR")]
    prefix, suffix = (t.replace("\n", newline) for t in (prefix, suffix))
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "mine.ics"
        path.write_bytes((prefix + session + suffix).encode())
        backend = IcsFileBackend(path)
        obj = backend.get(SESSION_UID)
        backend.put(CalendarObject(obj.href, obj.etag, single_event(SESSION_UID, "After")),
                    etag=obj.etag)
        text = path.read_bytes().decode()
    assert text.startswith(prefix)
    assert text.endswith(suffix)
    assert text[len(prefix):-len(suffix)] == (
        session.replace("Before", "After").replace("\r\n", "\n").replace("\n", newline))


# --- safety -------------------------------------------------------------------------------


def test_a_missing_file_is_created_with_a_proper_header(tmp_path: Path) -> None:
    backend = IcsFileBackend(tmp_path / "new" / "dir" / "calendar.ics")
    assert backend.list() == []
    backend.create(single_event("first@calsync.test"), uid="first@calsync.test")
    text = backend.path.read_bytes().decode()
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync//calsync//EN\r\n"
                           "CALSCALE:GREGORIAN\r\n")
    assert text.endswith("END:VEVENT\r\nEND:VCALENDAR\r\n")
    assert [h for h, _ in backend.list()] == ["first@calsync.test"]


def test_a_crash_before_the_replace_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cal").mkdir()
    path = tmp_path / "cal" / "work.ics"
    original = write_export(path)
    backend = IcsFileBackend(path)
    obj = backend.get(SESSION_UID)

    def crash(src: object, dst: object) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        backend.put(CalendarObject(obj.href, obj.etag, single_event(SESSION_UID, "New")),
                    etag=obj.etag)
    assert path.read_bytes() == original
    assert sorted(p.name for p in path.parent.iterdir()) == [".work.ics.lock", "work.ics"]


def test_permissions_and_symlinks_are_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.ics"
    write_export(real)
    real.chmod(0o640)
    link = tmp_path / "calendar.ics"
    link.symlink_to(real)
    backend = IcsFileBackend(link)
    obj = backend.get(SESSION_UID)
    backend.put(CalendarObject(obj.href, obj.etag, single_event(SESSION_UID, "New")),
                etag=obj.etag)
    assert link.is_symlink()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert "SUMMARY:New" in real.read_text()


HOLD_LOCK = """
import fcntl, sys, time
with open(sys.argv[1], "a+b") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def locked_by_another_process(tmp_path: Path):
    processes: list[subprocess.Popen[str]] = []

    def hold(path: Path, seconds: float) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path.with_name(f".{path.name}.lock")),
             str(seconds)], stdout=subprocess.PIPE, text=True)
        processes.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"

    yield hold
    for proc in processes:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.mark.skipif(sys.platform == "win32", reason="the helper process uses fcntl")
def test_a_put_while_another_process_holds_the_lock_fails_clearly(
    tmp_path: Path, locked_by_another_process
) -> None:
    path = tmp_path / "work.ics"
    original = write_export(path)
    backend = IcsFileBackend(path, lock_timeout_seconds=0.3)
    obj = backend.get(SESSION_UID)
    locked_by_another_process(path, 30)
    with pytest.raises(LockedError) as info:
        backend.put(CalendarObject(obj.href, obj.etag, single_event(SESSION_UID, "New")),
                    etag=obj.etag)
    assert str(tmp_path / ".work.ics.lock") in str(info.value)
    assert path.read_bytes() == original


@pytest.mark.skipif(sys.platform == "win32", reason="the helper process uses fcntl")
def test_a_put_waits_for_a_short_lock(tmp_path: Path, locked_by_another_process) -> None:
    path = tmp_path / "work.ics"
    write_export(path)
    backend = IcsFileBackend(path, lock_timeout_seconds=20)
    obj = backend.get(SESSION_UID)
    locked_by_another_process(path, 0.4)
    backend.put(CalendarObject(obj.href, obj.etag, single_event(SESSION_UID, "New")),
                etag=obj.etag)
    assert "SUMMARY:New" in path.read_text()


def test_a_stale_etag_from_another_handle_is_refused_after_re_reading(tmp_path: Path) -> None:
    path = tmp_path / "work.ics"
    write_export(path)
    mine, theirs = IcsFileBackend(path), IcsFileBackend(path)
    obj = mine.get(SESSION_UID)
    path.write_bytes(path.read_bytes().replace(b"SUMMARY:calsync: backends", b"SUMMARY:Edited"))
    with pytest.raises(PreconditionFailed):
        mine.put(CalendarObject(obj.href, obj.etag, single_event(SESSION_UID, "Mine")),
                 etag=obj.etag)
    assert "SUMMARY:Edited" in theirs.get(SESSION_UID).text


# --- broken files -------------------------------------------------------------------------

BROKEN = {
    "unclosed event": ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nEND:VCALENDAR\n", "line 4"),
    "never closed": ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nEND:VEVENT\n", "line 1"),
    "not a content line": ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID a\nEND:VEVENT\nEND:VCALENDAR\n",
                           "line 3"),
    "not a calendar": ("<html><body>404</body></html>\n", "line 1"),
    "text after the end": ("BEGIN:VCALENDAR\nEND:VCALENDAR\nSUMMARY:stray\n", "line 3"),
}


@pytest.mark.parametrize("text,where", list(BROKEN.values()), ids=list(BROKEN))
def test_a_broken_file_is_named_in_one_line(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "broken.ics"
    path.write_text(text)
    with pytest.raises(CalendarParseError) as info:
        IcsFileBackend(path).list()
    message = str(info.value)
    assert message.startswith(f"{path}: {where}: ")
    assert "\n" not in message


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.ics"
    path.write_bytes("BEGIN:VCALENDAR\nSUMMARY:Café\nEND:VCALENDAR\n".encode("latin-1"))
    with pytest.raises(CalendarParseError, match=r"latin1\.ics: line 2: not UTF-8"):
        IcsFileBackend(path).list()


def test_a_broken_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "broken.ics"
    path.write_text(BROKEN["unclosed event"][0])
    with pytest.raises(CalendarParseError):
        IcsFileBackend(path).create(single_event("x@calsync.test"), uid="x@calsync.test")
    assert path.read_text() == BROKEN["unclosed event"][0]
