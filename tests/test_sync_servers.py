"""`run_sync` end to end on real calendars: Radicale, strict Xandikos and a local .ics file.

One calendar holds what a person really has: a weekly session series with an EXDATE and an
occurrence they moved in their app, an all-day session, a single session, a future one, and
events exported by other clients that calsync must never touch. Usage comes from Claude Code
transcript files. The clock is passed in (NOW).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from icalendar import Calendar

from calsync.backends.caldav import CaldavBackend
from calsync.backends.icsfile import IcsFileBackend
from calsync.config import CalendarSettings, Settings
from calsync.engine import RetryPolicy
from calsync.model import CalendarObject
from calsync.syncing import SyncRequest, SyncResult, run_sync
from tests.backends.contract import BERLIN as BERLIN_VTIMEZONE
from tests.faultproxy import FaultProxy
from tests.servers import DavServer, make_calendar

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 18, 12, 0, tzinfo=BERLIN)
FAST = RetryPolicy(conflicts=3, faults=2, backoff_seconds=0.0)

VTIMEZONE = BERLIN_VTIMEZONE.strip()

PLAN = "X-CLAUDE-PROJECT:calsync\nX-CLAUDE-TOKEN-BUDGET-TOTAL:100000\n"


def vcalendar(*events: str, prodid: str = "-//calsync tests//EN") -> str:
    body = "\n".join(e.strip() for e in events)
    return (f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:{prodid}\n{VTIMEZONE}\n{body}\n"
            "END:VCALENDAR\n").replace("\n", "\r\n")


def vevent(uid: str, start: str, end: str, *extra: str, summary: str = "Session") -> str:
    def when(name: str, value: str) -> str:
        if len(value) == 8:
            return f"{name};VALUE=DATE:{value}"
        return f"{name};TZID=Europe/Berlin:{value}"

    lines = "\n".join(extra)
    return (f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20261101T080000Z\nSUMMARY:{summary}\n"
            f"{when('DTSTART', start)}\n{when('DTEND', end)}\n{lines}\nEND:VEVENT")


# window: Nov 4 12:00 → Nov 18 12:00. The series meets on Mondays and Wednesdays at 09:00:
# Nov 9 is an EXDATE, Nov 16 was moved to Tuesday 17 at 14:00, Nov 11 and Nov 18 are due.
SESSIONS = {
    "weekly-impl": vcalendar(
        vevent("weekly-impl", "20261102T090000", "20261102T110000", PLAN.strip(),
               "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=12",
               "EXDATE;TZID=Europe/Berlin:20261109T090000",
               "DESCRIPTION:GOALS:\\n1. Sync engine\\n2. [x] Planner",
               summary="Implementation"),
        vevent("weekly-impl", "20261117T140000", "20261117T160000",
               "RECURRENCE-ID;TZID=Europe/Berlin:20261116T090000", "LOCATION:Cafe",
               "SEQUENCE:1", summary="Implementation (moved)"),
    ),
    "review-day": vcalendar(vevent("review-day", "20261113", "20261114", PLAN.strip(),
                                   summary="Security review day")),
    "planning": vcalendar(vevent("planning", "20261112T140000", "20261112T160000",
                                 PLAN.strip(), summary="Planning")),
    "future": vcalendar(vevent("future", "20261125T090000", "20261125T110000", PLAN.strip(),
                               summary="Later")),
}
FOREIGN = {
    "thunderbird-meeting": vcalendar(vevent(
        "thunderbird-meeting", "20261112T100000", "20261112T110000",
        "ORGANIZER;CN=Ann:mailto:ann@example.com",
        "ATTENDEE;PARTSTAT=ACCEPTED;CN=Bo:mailto:bo@example.com",
        "X-MOZ-GENERATION:3", "DESCRIPTION:Budget review for Q4",
        summary="Team meeting"), prodid="-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN"),
    "google-birthday": vcalendar(vevent(
        "google-birthday", "20261115", "20261116", "RRULE:FREQ=YEARLY",
        "X-GOOGLE-CALENDAR-CONTENT-TITLE:Birthday", "TRANSP:TRANSPARENT",
        summary="Ann's birthday"), prodid="-//Google Inc//Google Calendar 70.9054//EN"),
}
# (when, tokens): records in the logs, all in project calsync
USAGE = [
    (datetime(2026, 11, 11, 9, 30, tzinfo=BERLIN), 30_000),
    (datetime(2026, 11, 12, 14, 30, tzinfo=BERLIN), 20_000),
    (datetime(2026, 11, 13, 11, 0, tzinfo=BERLIN), 5_000),
    (datetime(2026, 11, 17, 14, 30, tzinfo=BERLIN), 150_000),
]


def write_logs(root: Path, usage: list[tuple[datetime, int]], session: str = "s1") -> Path:
    """Claude Code transcripts: one assistant line per (when, tokens), in project calsync."""
    folder = root / "projects" / "-Users-alex-src-calsync"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{session}.jsonl").open("ab") as out:
        for i, (when, tokens) in enumerate(usage):
            line = {
                "type": "assistant", "sessionId": session, "cwd": "/Users/alex/src/calsync",
                "isSidechain": False, "requestId": f"req-{session}-{i}",
                "timestamp": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "message": {"id": f"msg-{session}-{i}", "model": "claude-sonnet-4-5-20250929",
                            "role": "assistant", "usage": {
                                "input_tokens": tokens // 2, "output_tokens": tokens // 2,
                                "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 0}},
            }
            out.write(orjson.dumps(line) + b"\n")
    return root


# --- where the calendar lives ----------------------------------------------------------------


@dataclass
class Place:
    """One calendar (a CalDAV collection or an .ics file) and how to look at it directly."""

    kind: str
    location: str
    settings: Settings
    env: dict[str, str]
    logs: Path

    def direct(self, location: str | None = None):
        if self.kind == "ics":
            return IcsFileBackend(self.location)
        return CaldavBackend(location or self.location, username=self.settings.calendar.username,
                             password=self.env.get("CALSYNC_PASSWORD"), timeout_seconds=10)

    def upload(self, objects: dict[str, str]) -> None:
        if self.kind == "ics":
            texts = [t.replace("\r\n", "\n").split("BEGIN:VEVENT", 1) for t in objects.values()]
            head = texts[0][0]
            events = "".join("BEGIN:VEVENT" + t[1].rsplit("END:VCALENDAR", 1)[0] for t in texts)
            Path(self.location).write_text(head + events + "END:VCALENDAR\n", encoding="utf-8")
            return
        backend = self.direct()
        for uid, text in objects.items():
            backend.create(text, uid=uid)
        backend.close()

    def objects(self) -> dict[str, CalendarObject]:
        """Every object now, by UID."""
        backend = self.direct()
        if isinstance(backend, IcsFileBackend):
            return {o.href: o for o in backend.read_all()}
        found = backend.get_many([href for href, _ in backend.list()])
        backend.close()
        return {str(Calendar.from_ical(o.text).walk("VEVENT")[0]["UID"]): o for o in found}

    def sync(self, now: datetime = NOW, **kw) -> SyncResult:
        request = SyncRequest(self.location, now - timedelta(days=14), now, now, BERLIN,
                              dry_run=kw.pop("dry_run", False), logs=(self.logs,))
        return run_sync(self.settings, self.env, request, policy=kw.pop("policy", FAST),
                        sleep=kw.pop("sleep", lambda seconds: None), **kw)


def _place(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    env = {"CALSYNC_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path / "home")}
    logs = write_logs(tmp_path / "claude", USAGE)
    if kind == "ics":
        return Place(kind, str(tmp_path / "sessions.ics"), Settings(), env, logs)
    server: DavServer = request.getfixturevalue(f"{kind}_server")
    url = make_calendar(server, request.node.name)
    calendar = CalendarSettings(url=url, username=server.username, auth="basic"
                                if server.username else "auto", timeout_seconds=2)
    if server.password:
        env["CALSYNC_PASSWORD"] = server.password
    return Place(kind, url, Settings(calendar=calendar), env, logs)


@pytest.fixture(params=[pytest.param("radicale", marks=pytest.mark.server),
                        pytest.param("xandikos", marks=pytest.mark.server), "ics"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    found = _place(request.param, request, tmp_path)
    found.upload(SESSIONS | FOREIGN)
    return found


@pytest.fixture(params=[pytest.param("radicale", marks=pytest.mark.server),
                        pytest.param("xandikos", marks=pytest.mark.server)])
def dav_place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    found = _place(request.param, request, tmp_path)
    found.upload(SESSIONS | FOREIGN)
    return found


@pytest.fixture
def proxied(dav_place: Place) -> Iterator[tuple[Place, FaultProxy]]:
    """The same calendar, reached through a fault-injecting proxy."""
    origin = dav_place.location.split("/", 3)
    with FaultProxy(f"{origin[0]}//{origin[2]}", hold_seconds=10) as proxy:
        url = f"{proxy.url}/{origin[3]}"
        calendar = dav_place.settings.calendar.model_copy(update={"url": url})
        yield Place(dav_place.kind, url, Settings(calendar=calendar), dav_place.env,
                    dav_place.logs), proxy


def events_of(obj: CalendarObject) -> dict[str | None, object]:
    """The VEVENTs of one object by RECURRENCE-ID (as YYYYMMDD), None for the master/single."""
    found = {}
    for event in Calendar.from_ical(obj.text).walk("VEVENT"):
        rid = event.decoded("RECURRENCE-ID") if "RECURRENCE-ID" in event else None
        found[rid.strftime("%Y%m%d") if rid else None] = event
    return found


def status(obj: CalendarObject, rid: str | None = None) -> str:
    return str(events_of(obj)[rid].get("X-CLAUDE-STATUS", ""))


# --- the scenarios ----------------------------------------------------------------------------


def test_sync_writes_each_occurrence_and_leaves_everything_else(place: Place):
    before = place.objects()
    result = place.sync()
    report = result.report
    assert report.exit_code == 0, (report.failed, report.problems)
    # due: series Nov 11, Nov 16 (moved), Nov 18; all-day Nov 13; single Nov 12
    assert (report.occurrences, report.updated, report.failed) == (5, 5, ())
    after = place.objects()

    series = events_of(after["weekly-impl"])
    assert set(series) == {None, "20261111", "20261116", "20261118"}  # no override on Nov 9
    assert status(after["weekly-impl"], "20261111") == "completed"
    assert status(after["weekly-impl"], "20261116") == "over-budget"
    assert status(after["weekly-impl"], "20261118") == "missed"
    moved = series["20261116"]
    assert str(moved["LOCATION"]) == "Cafe"
    assert moved.decoded("DTSTART") == datetime(2026, 11, 17, 14, 0, tzinfo=BERLIN)
    assert str(moved["X-CLAUDE-ACTUAL-TOKENS-TOTAL"]) == "150000"
    assert "EXDATE" in series[None] and "X-CLAUDE-STATUS" not in series[None]
    assert "✅ Planner" in str(series["20261111"]["DESCRIPTION"])

    assert status(after["review-day"]) == "completed"
    assert status(after["planning"]) == "completed"
    assert str(events_of(after["planning"])[None]["X-CLAUDE-ACTUAL-TOKENS-TOTAL"]) == "20000"
    assert after["future"] == before["future"]
    for uid in FOREIGN:
        assert after[uid].text == before[uid].text
        assert after[uid].etag == before[uid].etag
    for uid in SESSIONS:
        assert all(word not in after[uid].text for word in ("METHOD:", "ORGANIZER", "ATTENDEE"))


def test_a_second_sync_writes_nothing_and_costs_at_most_two_requests(place: Place):
    assert place.sync().report.updated == 5
    before = place.objects()
    again = place.sync(now=NOW + timedelta(minutes=15))
    assert (again.report.updated, again.report.unchanged, again.report.failed) == (0, 5, ())
    assert place.objects() == before
    if place.kind != "ics":
        assert again.requests is not None and again.requests <= 2
        idle = place.sync(now=NOW + timedelta(minutes=30))
        assert idle.requests is not None and idle.requests <= 2


def test_new_usage_updates_only_its_occurrence(place: Place):
    place.sync()
    before = place.objects()
    write_logs(place.logs, [(datetime(2026, 11, 12, 15, 0, tzinfo=BERLIN), 10_000)], "s2")
    result = place.sync(now=NOW + timedelta(minutes=15))
    assert [c.uid for d in result.report.written for c in d.changes] == ["planning"]
    after = place.objects()
    assert str(events_of(after["planning"])[None]["X-CLAUDE-ACTUAL-TOKENS-TOTAL"]) == "30000"
    assert after["weekly-impl"] == before["weekly-impl"]
    if place.kind != "ics":
        assert result.requests is not None and result.requests <= 2 + 1 + 1  # sync, PUT(s)


def test_a_sync_that_lost_its_state_finds_nothing_to_write(place: Place):
    """What the server stores reads back as written: two session ids in one occurrence too."""
    write_logs(place.logs, [(datetime(2026, 11, 12, 15, 0, tzinfo=BERLIN), 10_000)], "s2")
    place.sync()
    stored = events_of(place.objects()["planning"])[None]["X-CLAUDE-SESSION-IDS"]
    assert "s1" in str(stored) and "s2" in str(stored)
    shutil.rmtree(place.env["CALSYNC_STATE_DIR"])
    again = place.sync(now=NOW + timedelta(minutes=15))
    assert (again.report.updated, again.report.failed) == (0, ())


def test_dry_run_reports_the_plan_and_writes_nothing(place: Place):
    before = place.objects()
    result = place.sync(dry_run=True)
    assert result.report.dry_run and result.report.updated == 5
    assert place.objects() == before


def test_an_edit_in_the_calendar_app_during_sync_survives_with_the_actuals(tmp_path, request):
    """The person renames the single session between calsync's read and its write (412)."""
    # the .ics flavour: a file edited between read and write
    found = _place("ics", request, tmp_path)
    found.upload(SESSIONS)
    from tests.test_engine import Interfering

    backend = Interfering(IcsFileBackend(found.location))

    def person_renames_it():
        direct = IcsFileBackend(found.location)
        obj = direct.get("planning")
        direct.put(CalendarObject(obj.href, obj.etag, obj.text.replace(
            "SUMMARY:Planning", "SUMMARY:Planning (renamed)")), etag=obj.etag)

    backend.before_put["planning"] = [person_renames_it]
    report = found.sync(backend=backend).report
    assert report.conflicts == 1 and report.exit_code == 0
    event = events_of(found.objects()["planning"])[None]
    assert str(event["SUMMARY"]) == "Planning (renamed)"
    assert str(event["X-CLAUDE-STATUS"]) == "completed"


def test_an_edit_on_the_server_during_sync_survives_with_the_actuals(proxied):
    place, proxy = proxied
    target = next(o for uid, o in place.objects().items() if uid == "planning")
    upstream = place.direct(proxy_upstream(place, proxy))

    def person_renames_it(method: str, path: str) -> None:
        obj = upstream.get(target.href)
        upstream.put(CalendarObject(obj.href, obj.etag, obj.text.replace(
            "SUMMARY:Planning", "SUMMARY:Planning (renamed)")), etag=obj.etag)

    proxy.before(person_renames_it, method="PUT", path=target.href.rsplit("/", 1)[1])
    report = place.sync().report
    upstream.close()
    assert report.conflicts == 1 and report.exit_code == 0 and report.updated == 5
    event = events_of(place.objects()["planning"])[None]
    assert str(event["SUMMARY"]) == "Planning (renamed)"
    assert str(event["X-CLAUDE-STATUS"]) == "completed"


def proxy_upstream(place: Place, proxy: FaultProxy) -> str:
    return place.location.replace(proxy.url,
                                  f"http://{proxy.upstream_host}:{proxy.upstream_port}")


def test_server_faults_are_retried_and_a_lasting_one_fails_only_its_object(proxied):
    place, proxy = proxied
    hrefs = {uid: o.href.rsplit("/", 1)[1] for uid, o in place.objects().items()}
    proxy.fail(status=503, retry_after=1, times=1, method="PUT", path=hrefs["planning"])
    proxy.reset(times=1, method="PUT", path=hrefs["weekly-impl"])
    proxy.fail(status=500, times=50, method="PUT", path=hrefs["review-day"])
    result = place.sync()
    report = result.report
    assert [f.href.rsplit("/", 1)[1] for f in report.failed] == [hrefs["review-day"]]
    assert "HTTP 500" in report.failed[0].message
    assert report.exit_code == 1
    assert (report.updated, report.unchanged) == (4, 0)
    after = place.objects()
    assert status(after["planning"]) == "completed"
    assert status(after["weekly-impl"], "20261111") == "completed"
    assert "X-CLAUDE-STATUS" not in after["review-day"].text
    # the next run, with the server healthy again, finishes the job
    proxy.clear()
    again = place.sync(now=NOW + timedelta(minutes=15)).report
    assert [c.uid for d in again.written for c in d.changes] == ["review-day"]
    assert again.exit_code == 0


def test_a_server_refusing_one_big_first_read_is_read_in_parts(proxied):
    """Radicale answers 400 to a REPORT past 10,000 VEVENTs: list first, then multigets."""
    place, proxy = proxied
    proxy.fail(status=400, times=1, method="REPORT")
    report = place.sync().report
    assert (report.updated, report.failed, report.exit_code) == (5, (), 0)
    assert next(s.status for s in proxy.seen if s.method == "REPORT") == 400
    assert status(place.objects()["planning"]) == "completed"
    idle = place.sync(now=NOW + timedelta(minutes=15))  # the sync token was kept
    assert idle.report.updated == 0
    assert idle.requests is not None and idle.requests <= 2


def test_a_server_asking_to_slow_down_is_given_the_pause_it_asks_for(proxied):
    place, proxy = proxied
    hrefs = {uid: o.href.rsplit("/", 1)[1] for uid, o in place.objects().items()}
    proxy.fail(status=429, retry_after=7, times=1, method="PUT", path=hrefs["planning"])
    waits: list[float] = []
    report = place.sync(sleep=waits.append).report
    assert report.exit_code == 0 and report.updated == 5
    assert waits == [7]
    assert [s.status for s in proxy.seen if s.method == "PUT"].count(429) == 1


def test_a_server_that_does_not_answer_is_retried_then_reported(proxied):
    place, proxy = proxied
    calendar = place.settings.calendar.model_copy(update={"timeout_seconds": 0.5})
    place.settings = Settings(calendar=calendar)
    hrefs = {uid: o.href.rsplit("/", 1)[1] for uid, o in place.objects().items()}
    proxy.hang(times=1, method="PUT", path=hrefs["planning"])       # one timeout: retried
    proxy.hang(times=10, method="PUT", path=hrefs["review-day"])    # every time: reported
    report = place.sync(policy=RetryPolicy(faults=1, backoff_seconds=0.0)).report
    assert [f.href.rsplit("/", 1)[1] for f in report.failed] == [hrefs["review-day"]]
    assert "no answer" in report.failed[0].message
    assert status(place.objects()["planning"]) == "completed"


# --- kill -9 ----------------------------------------------------------------------------------


def _many_sessions(now: datetime, count: int) -> str:
    events = [vevent(f"s{i:02d}", (now - timedelta(hours=3 * i + 3)).strftime("%Y%m%dT%H%M%S"),
                     (now - timedelta(hours=3 * i + 2)).strftime("%Y%m%dT%H%M%S"), PLAN.strip())
              for i in range(count)]
    events.append(vevent("daily", (now - timedelta(days=6, hours=1)).strftime("%Y%m%dT%H%M%S"),
                         (now - timedelta(days=6)).strftime("%Y%m%dT%H%M%S"), PLAN.strip(),
                         "RRULE:FREQ=DAILY;COUNT=6"))
    return vcalendar(*events)


def _consistent(path: Path) -> list[str]:
    """Every session event either untouched or fully written; one override per occurrence."""
    calendar = Calendar.from_ical(path.read_text(encoding="utf-8"))
    seen = set()
    done = []
    for event in calendar.walk("VEVENT"):
        key = (str(event["UID"]), str(event.get("RECURRENCE-ID", "")))
        assert key not in seen
        seen.add(key)
        if "X-CLAUDE-STATUS" in event:
            assert "--- end calsync actuals ---" in str(event["DESCRIPTION"])
            assert "X-CLAUDE-SYNCED-AT" in event
            done.append(key)
    return done


def test_kill_9_at_any_moment_leaves_events_whole_and_the_next_run_finishes(tmp_path):
    now = datetime.now(BERLIN).replace(microsecond=0)
    path = tmp_path / "sessions.ics"
    path.write_text(_many_sessions(now, 20), encoding="utf-8")
    logs = write_logs(tmp_path / "claude", [(now - timedelta(hours=3 * i + 2, minutes=30), 1000)
                                            for i in range(20)])
    env = dict(os.environ, CALSYNC_STATE_DIR=str(tmp_path / "state"),
               CLAUDE_CONFIG_DIR=str(logs))
    command = [sys.executable, "-m", "calsync", "sync", "--calendar", str(path), "--quiet"]
    for moment in ("after the first write", 0.2, "after the next write"):
        original = path.read_bytes()
        process = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + 30
        if isinstance(moment, float):
            time.sleep(moment)
        else:  # wait until the file changes, then kill at once: in the middle of the writes
            while path.read_bytes() == original and time.monotonic() < deadline:
                time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
        process.wait()
        _consistent(path)
    finish = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert finish.returncode == 0, finish.stderr
    assert len(_consistent(path)) == 20 + 6
    again = subprocess.run([*command[:-1], "--json"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert orjson.loads(again.stdout)["updated"] == 0


def test_a_new_series_budget_reaches_the_occurrences_calsync_wrote(place: Place):
    place.sync()
    backend = place.direct()
    obj = place.objects()["weekly-impl"]
    master, _, rest = obj.text.partition("RECURRENCE-ID")
    edited = master.replace("X-CLAUDE-TOKEN-BUDGET-TOTAL:100000",
                            "X-CLAUDE-TOKEN-BUDGET-TOTAL:200000", 1) + "RECURRENCE-ID" + rest
    assert edited != obj.text
    backend.put(CalendarObject(obj.href, obj.etag, edited), etag=obj.etag)
    getattr(backend, "close", lambda: None)()
    report = place.sync(now=NOW + timedelta(minutes=15)).report
    assert report.exit_code == 0 and report.updated == 3
    series = events_of(place.objects()["weekly-impl"])
    for rid in ("20261111", "20261116", "20261118"):
        assert str(series[rid]["X-CLAUDE-TOKEN-BUDGET-TOTAL"]) == "200000"
    assert str(series["20261111"]["X-CLAUDE-BUDGET-USED-PERCENT"]) == "15"
    assert status(place.objects()["weekly-impl"], "20261116") == "completed"  # 150k of 200k
    assert str(series["20261116"]["LOCATION"]) == "Cafe"


def test_a_sync_token_the_server_refuses_falls_back_to_a_full_listing(dav_place: Place):
    import sqlite3

    dav_place.sync()
    database = sqlite3.connect(Path(dav_place.env["CALSYNC_STATE_DIR"]) / "state.sqlite3")
    with database:
        database.execute("UPDATE sync_collection SET token = 'http://example.com/ns/sync/999'")
    database.close()
    again = dav_place.sync(now=NOW + timedelta(minutes=15))
    assert (again.report.updated, again.report.failed) == (0, ())
    assert again.requests is not None and again.requests <= 3  # refused, full sync, no fetch
    idle = dav_place.sync(now=NOW + timedelta(minutes=30))
    assert idle.requests is not None and idle.requests <= 2


def test_kill_9_between_a_put_and_its_bookkeeping_on_caldav(tmp_path, radicale_server):
    """The worst moment: the server stored a write, calsync died before recording it."""
    url = make_calendar(radicale_server, "kill-9")
    place = Place("radicale", url, Settings(calendar=CalendarSettings(
        url=url, username="alice", auth="basic")), {"CALSYNC_PASSWORD": "secret"},
        write_logs(tmp_path / "claude", USAGE))
    place.upload(SESSIONS | FOREIGN)
    before = place.objects()
    origin = url.split("/", 3)
    env = dict(os.environ, CALSYNC_STATE_DIR=str(tmp_path / "state"),
               CLAUDE_CONFIG_DIR=str(place.logs), CALSYNC_PASSWORD="secret")
    with FaultProxy(f"{origin[0]}//{origin[2]}") as proxy:
        command = [sys.executable, "-m", "calsync", "sync", "--calendar",
                   f"{proxy.url}/{origin[3]}", "--username", "alice", "--from", "2026-11-04",
                   "--to", "2026-11-18", "--tz", "Europe/Berlin", "--json"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        puts: list[str] = []

        def kill_on_the_second_put(method: str, path: str) -> None:
            puts.append(path)
            if len(puts) == 2:
                process.send_signal(signal.SIGKILL)
                process.wait()

        proxy.before(kill_on_the_second_put, method="PUT", times=10)
        process.wait(timeout=60)
        assert process.returncode == -signal.SIGKILL
        written = sum(1 for uid in SESSIONS if "X-CLAUDE-STATUS" in place.objects()[uid].text)
        assert written == 2  # the killed run's second PUT reached the server all the same
        finish = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert finish.returncode == 0, finish.stderr
    assert orjson.loads(finish.stdout)["updated"] >= 1
    after = place.objects()
    assert after["future"] == before["future"]
    for uid in FOREIGN:
        assert (after[uid].text, after[uid].etag) == (before[uid].text, before[uid].etag)
    for uid in ("weekly-impl", "review-day", "planning"):
        assert len(Calendar.from_ical(after[uid].text).walk("VEVENT")) == len(events_of(
            after[uid]))  # no occurrence written twice
        for rid, event in events_of(after[uid]).items():
            if uid != "weekly-impl" or rid is not None:
                assert "--- end calsync actuals ---" in str(event["DESCRIPTION"])
    assert orjson.loads(again.stdout)["updated"] == 0, again.stderr
