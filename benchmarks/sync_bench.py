"""The sync benchmark (issue 4 §8): `calsync sync` against a Radicale calendar of 5,000 events.

    python benchmarks/sync_bench.py                                # 20 series + 4,980 others
    python benchmarks/sync_bench.py --series 100,500 --repeat 1    # how the cost grows
    python benchmarks/sync_bench.py --repeat 1 --profile           # where calsync's time goes
    python benchmarks/sync_bench.py --at HEAD                      # calsync as committed

What it does, all on this machine, nothing left running afterwards:

1. Starts Radicale (`python -m radicale`, a process of its own, so its CPU is not ours) on
   a free loopback port, with basic auth and its storage under `benchmarks/.work/`.
2. Stores one calendar, once (not timed): N weekly session series over a year made by
   calsync's own template generator (`calsync.weekly`, 5 sessions a week per project, from
   26 weeks ago to 26 weeks ahead), and the other events of a person's ordinary calendar
   (`--others`, default 4,980: singles, all-day, recurring with EXDATE and moved
   occurrences, meetings with attendees and alarms, from four calendar apps, over 5 years),
   one calendar object each, through Radicale's own storage code (see `populate`). Every
   round then works on fresh on-disk copies of that collection.
3. Writes a matching Claude Code usage corpus (`tests/logcorpus.py`): one session in 90 % of
   the session occurrences that have ended (the rest are missed), in the project's directory.
4. Runs the real CLI (`calsync sync --calendar URL --username ... --from --to --json`,
   start-up included) with its own state dir: (1) the first sync, (2) an idle re-sync,
   (3) a sync after new usage in 10 occurrences of 10 different series, (4) the synced
   calendar again from an empty state dir (a new machine). The sync window is the whole
   year of the series, so the first sync writes every series.
5. The peer, on its own copy of the same calendar in the same round: a script using the
   caldav library (a process of its own, timed the same way) that sends one calendar-query
   REPORT fetching the calendar, then one conditional PUT per object calsync changed, with
   the texts calsync wrote. Done after (1) and after (3).

HTTP requests are counted from Radicale's log (every request, 401 round trips included);
CPU time is the process's own (user + system). Times are the median of `--repeat` rounds.
Prints a Markdown table and the targets met or missed; `--json FILE` keeps every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import pstats
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
sys.path.insert(0, str(ROOT))

USER, PASSWORD = "alice", "bench-secret"
HOST = "127.0.0.1"
ZONE = "America/New_York"
WEEKS_BEFORE, WEEKS = 26, 52
SESSION_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
SLOTS = (("08:00", "10:00"), ("10:30", "12:30"), ("13:30", "15:30"), ("16:00", "18:00"))
TYPES = ("planning", "implementation", "testing", "security-review")
DTSTAMP = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NEW_USAGE_OCCURRENCES = 10
PEER_MODE = "--peer-worker"


# --- the calendar ------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionSeries:
    uid: str
    project: str
    starts: tuple[datetime, ...]  # every occurrence, aware
    length: timedelta


def year_start(today: date) -> date:
    """The Monday 26 weeks before this week's Monday."""
    return today - timedelta(days=today.weekday(), weeks=WEEKS_BEFORE)


def session_objects(count: int, first: date) -> tuple[list[tuple[str, str]], list[SessionSeries]]:
    """`count` weekly series from calsync's template generator: 5 a week per project."""
    from calsync import schedule_file as sf
    from calsync import weekly
    from calsync.pricing import load_prices

    prices, types, zone = load_prices(), sf.load_session_types(), ZoneInfo(ZONE)
    objects: list[tuple[str, str]] = []
    series: list[SessionSeries] = []
    for p in range((count + len(SESSION_DAYS) - 1) // len(SESSION_DAYS)):
        project = f"proj-{p:03d}"
        days = SESSION_DAYS[: min(len(SESSION_DAYS), count - p * len(SESSION_DAYS))]
        begin, end = SLOTS[p % len(SLOTS)]
        text = 'name = "bench"\n' + "".join(
            f'[[sessions]]\nday = "{day}"\nstart = "{begin}"\nend = "{end}"\n'
            f'type = "{TYPES[(p + i) % len(TYPES)]}"\n' for i, day in enumerate(days))
        schedule = sf.parse_schedule(text, path="bench.toml", default_name="bench",
                                     shipped_types=types)
        planned = weekly.plan_series(schedule, project=project, start=first, weeks=WEEKS,
                                     tz=zone, prices=prices)
        objects += weekly.render_objects(planned, dtstamp=DTSTAMP)
        for one in planned:
            starts = tuple(one.first_start + timedelta(weeks=k) for k in range(one.count))
            series.append(SessionSeries(one.uid, project, starts,
                                        one.first_end - one.first_start))
    return objects, series


_PRODIDS = (
    "-//Apple Inc.//macOS 14.5//EN",
    "-//Google Inc//Google Calendar 70.9054//EN",
    "-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN",
    "-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN",
)
_VTIMEZONES = {
    "Europe/Berlin": (
        "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\n"
        "TZOFFSETTO:+0200\r\nTZNAME:CEST\r\nDTSTART:19700329T020000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\n"
        "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"),
    "America/New_York": (
        "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\n"
        "TZOFFSETTO:-0400\r\nTZNAME:EDT\r\nDTSTART:19700308T020000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\n"
        "TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\nDTSTART:19701101T020000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"),
}
_SUMMARIES = ("Dentist", "Team standup", "1:1 with Sam", "Lunch with Priya", "Quarterly review",
              "Gym", "Flight to Lisbon", "Parents' evening", "Sprint planning", "Haircut",
              "Board meeting", "Café con Léa", "Yoga", "Car service", "Architecture review")
_WORDS = ("agenda", "notes", "bring", "the", "slides", "dial", "in", "details", "below", "room",
          "booked", "parking", "at", "back", "door", "call", "if", "late", "remember",
          "documents", "quarterly", "numbers", "follow", "up")
_PEOPLE = ("sam", "priya", "lea", "tom", "ana", "li", "marc", "joy", "omar", "eva")


def _fold(line: str) -> str:
    """RFC 5545 folding at 75 octets, never inside a UTF-8 character."""
    parts, current, limit = [], b"", 75
    for char in line:
        data = char.encode()
        if len(current) + len(data) > limit:
            parts.append(current.decode())
            current, limit = b"", 74
        current += data
    parts.append(current.decode())
    return "\r\n ".join(parts)


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


class _Others:
    """The other events of a person's calendar, written the way calendar apps write them."""

    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)
        self.first = today - timedelta(days=int(365 * 4.5))
        self.span_days = 365 * 5

    def _when(self) -> datetime:
        day = self.first + timedelta(days=self.rng.randrange(self.span_days))
        return datetime.combine(day, datetime.min.time()).replace(
            hour=self.rng.randrange(7, 20), minute=self.rng.choice((0, 15, 30, 45)))

    def _text(self, words: int) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(words))

    def object(self, index: int) -> tuple[str, str]:
        r = self.rng
        uid = f"{r.getrandbits(64):016X}-{index:05d}@{r.choice(('icloud.com', 'google.com'))}"
        kind = r.random()
        zone = r.choice(tuple(_VTIMEZONES))
        events = (self._allday(uid) if kind < 0.15 else self._recurring(uid, zone)
                  if kind < 0.27 else self._meeting(uid, zone) if kind < 0.45
                  else self._single(uid, zone))
        needs_zone = "TZID=" in "".join(events)
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{r.choice(_PRODIDS)}",
                 "CALSCALE:GREGORIAN"]
        body = "\r\n".join(_fold(line) for line in lines) + "\r\n"
        body += _VTIMEZONES[zone] if needs_zone else ""
        return uid, body + "".join(events) + "END:VCALENDAR\r\n"

    def _event(self, uid: str, props: Sequence[str], extra: str = "") -> str:
        r = self.rng
        lines = ["BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{_stamp(DTSTAMP)}Z", *props,
                 f"SUMMARY:{_escape(r.choice(_SUMMARIES))}"]
        if r.random() < 0.4:
            lines.append(f"LOCATION:{_escape(self._text(r.randint(2, 6)))}")
        if r.random() < 0.6:
            lines.append(f"DESCRIPTION:{_escape(self._text(r.randint(5, 120)))}")
        if r.random() < 0.3:
            lines.append("SEQUENCE:" + str(r.randint(0, 3)))
        text = "".join(_fold(line) + "\r\n" for line in lines)
        return text + extra + "END:VEVENT\r\n"

    def _timed(self, zone: str, start: datetime, minutes: int) -> list[str]:
        return [f"DTSTART;TZID={zone}:{_stamp(start)}",
                f"DTEND;TZID={zone}:{_stamp(start + timedelta(minutes=minutes))}"]

    def _single(self, uid: str, zone: str) -> list[str]:
        start = self._when()
        return [self._event(uid, self._timed(zone, start, self.rng.choice((30, 45, 60, 90))))]

    def _allday(self, uid: str) -> list[str]:
        day = self._when().date()
        days = self.rng.choice((1, 1, 1, 2, 3, 7))
        return [self._event(uid, [f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
                                  f"DTEND;VALUE=DATE:{day + timedelta(days=days):%Y%m%d}",
                                  "TRANSP:TRANSPARENT"])]

    def _recurring(self, uid: str, zone: str) -> list[str]:
        r = self.rng
        start = self._when()
        if r.random() < 0.3:  # a birthday
            return [self._event(uid, [f"DTSTART;VALUE=DATE:{start:%Y%m%d}",
                                      f"DTEND;VALUE=DATE:{start + timedelta(days=1):%Y%m%d}",
                                      "RRULE:FREQ=YEARLY", "TRANSP:TRANSPARENT"])]
        count = r.randint(4, 60)
        props = [*self._timed(zone, start, 60),
                 f"RRULE:FREQ=WEEKLY;COUNT={count};BYDAY={start.strftime('%a')[:2].upper()}"]
        skipped = start + timedelta(weeks=r.randrange(1, count))
        if r.random() < 0.5:
            props.append(f"EXDATE;TZID={zone}:{_stamp(skipped)}")
        out = [self._event(uid, props)]
        if r.random() < 0.3:  # one occurrence moved by an hour
            moved = start + timedelta(weeks=r.randrange(1, count))
            out.append(self._event(uid, [f"RECURRENCE-ID;TZID={zone}:{_stamp(moved)}",
                                         *self._timed(zone, moved + timedelta(hours=1), 60)]))
        return out

    def _meeting(self, uid: str, zone: str) -> list[str]:
        r = self.rng
        start = self._when()
        people = r.sample(_PEOPLE, r.randint(2, 6))
        props = [*self._timed(zone, start, r.choice((30, 60))),
                 f"ORGANIZER;CN={people[0].title()}:mailto:{people[0]}@example.com"]
        props += [f"ATTENDEE;CN={p.title()};CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;"
                  f"PARTSTAT={r.choice(('ACCEPTED', 'TENTATIVE', 'NEEDS-ACTION'))};RSVP=TRUE:"
                  f"mailto:{p}@example.com" for p in people]
        alarm = ("BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\n"
                 "TRIGGER:-PT15M\r\nEND:VALARM\r\n")
        return [self._event(uid, props, alarm)]


def other_objects(count: int, seed: int, today: date) -> list[tuple[str, str]]:
    maker = _Others(seed, today)
    return [maker.object(i) for i in range(count)]


# --- the usage corpus ----------------------------------------------------------------------


def cwd_of(project: str) -> str:
    return f"/home/dev/src/{project}"


def write_sessions(root: Path, wanted: Sequence[tuple[str, datetime]], seed: int) -> int:
    """One Claude Code session per (project, start) under `root/projects`; records written."""
    from tests.logcorpus import Features, Generator, encode_cwd

    generator = Generator(root, seed, Features(content_scale=0.05))
    for project, start in wanted:
        cwd = cwd_of(project)
        begin = start.astimezone(UTC) + timedelta(minutes=generator.rng.uniform(2, 15))
        generator.session(root / "projects" / encode_cwd(cwd), cwd, begin,
                          generator.rng.randint(2, 5))
    return len(generator.corpus.calls)


def corpus_plan(series: Sequence[SessionSeries], now: datetime,
                seed: int) -> list[tuple[str, datetime]]:
    """A session in 90 % of the occurrences that ended at least 2 hours ago."""
    rng = random.Random(seed)
    return [(one.project, start) for one in series for start in one.starts
            if start + one.length < now - timedelta(hours=2) and rng.random() < 0.9]


def new_usage_plan(series: Sequence[SessionSeries], now: datetime) -> list[tuple[str, datetime]]:
    """The last ended occurrence of each of 10 different series (10 objects to write)."""
    chosen = []
    for one in series[:NEW_USAGE_OCCURRENCES]:
        ended = [s for s in one.starts if s + one.length < now - timedelta(hours=2)]
        chosen.append((one.project, ended[-1]))
    return chosen


# --- Radicale ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Radicale:
    url: str
    config: Path
    storage: Path
    log: Path

    def collection_dir(self, name: str) -> Path:
        return self.storage / "collection-root" / USER / name

    def calendar_url(self, name: str) -> str:
        return f"{self.url}{USER}/{name}/"


def radicale_config(work: Path, auth_delay: float, report_limit: int | None = None
                    ) -> Radicale:
    """Radicale's config for a free loopback port, storage under `work`, basic auth;
    `report_limit` raises `[reporting] max_expand_occurrence` (10,000 VEVENTs per REPORT)."""
    users, config, port = work / "users", work / "radicale.conf", free_port()
    users.write_text(f"{USER}:{PASSWORD}\n")
    config.write_text(
        f"[server]\nhosts = {HOST}:{port}\n"
        f"[auth]\ntype = htpasswd\nhtpasswd_filename = {users}\n"
        f"htpasswd_encryption = plain\ndelay = {auth_delay}\n"
        "[rights]\ntype = owner_only\n"
        f"[storage]\nfilesystem_folder = {work / 'storage'}\n"
        "[logging]\nlevel = info\n"
        + (f"[reporting]\nmax_expand_occurrence = {report_limit}\n" if report_limit else ""))
    return Radicale(f"http://{HOST}:{port}/", config, work / "storage", work / "radicale.log")


@contextlib.contextmanager
def running(server: Radicale) -> Iterator[None]:
    """`python -m radicale` with `server.config`; always stopped on the way out."""
    with server.log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "radicale", "--config",
                                    str(server.config)], stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while b"Radicale server ready" not in server.log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Radicale did not start; see {server.log}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_REQUEST = re.compile(r"\] ([A-Z]+) request for '")
_RESPONSE = re.compile(r"\] ([A-Z]+) response status for '.*?' in ([0-9.]+) seconds.*?: (\d{3})")


@dataclass
class Requests:
    """What Radicale logged between two marks: requests by method, statuses, server time."""

    methods: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    server_seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.methods.values())

    def describe(self) -> str:
        parts = ", ".join(f"{n} {m}" for m, n in sorted(self.methods.items()))
        return f"{self.total} ({parts})" if parts else "0"


class RequestLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    def since(self, mark: int) -> Requests:
        time.sleep(0.05)  # the last response line is written before the body is sent
        with self.path.open("rb") as fh:
            fh.seek(mark)
            text = fh.read().decode("utf-8", "replace")
        methods: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        seconds = 0.0
        for line in text.splitlines():
            if (request := _REQUEST.search(line)) is not None:
                methods[request.group(1)] += 1
            elif (response := _RESPONSE.search(line)) is not None:
                seconds += float(response.group(2))
                statuses[response.group(3)] += 1
        return Requests(dict(methods), dict(statuses), round(seconds, 3))


# --- talking to Radicale for set-up (not measured) -----------------------------------------


def dav_client(server: Radicale) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=(USER, PASSWORD), timeout=120)


def populate(config: Path, name: str, objects: Sequence[tuple[str, str]]) -> None:
    """Store `objects` as calendar `name` through Radicale's own storage layer, the code a
    PUT runs (`radicale.app.put.prepare`, then the store), so the files and caches are what
    5,000 PUTs would leave. Not through HTTP: Radicale checks the new UID against every
    stored item on each PUT, so 5,000 PUTs take ten minutes."""
    import radicale.config
    import radicale.item
    import radicale.storage
    from radicale.app.put import prepare

    logging.getLogger("radicale").setLevel(logging.ERROR)
    configuration = radicale.config.load([(str(config), False)])
    storage = radicale.storage.load(configuration)
    items: list[Any] = []
    for uid, text in objects:
        prepared, _tag, _whole, _props, problem = prepare(
            radicale.item.read_components(text), f"/{USER}/{name}/{uid}.ics", "text/calendar",
            True, True, 10_000_000, 10_000, tag="VCALENDAR", write_whole_collection=False)
        if problem is not None:
            raise problem[1]
        items.extend(prepared)
    with storage.acquire_lock("w"):
        collection, _replaced, _new = storage.create_collection(
            f"/{USER}/{name}/", items=items, props={"tag": "VCALENDAR", "D:displayname": name})
        collection.sync()  # the sync history each PUT would have recorded (else the first
        # sync-collection REPORT pays for 5,000 history entries: 9 s)


def etags(client: httpx.Client, name: str) -> dict[str, str]:
    """Object name → etag, from one PROPFIND."""
    body = ('<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop></propfind>')
    response = client.request("PROPFIND", f"/{USER}/{name}/", content=body,
                              headers={"Depth": "1"})
    response.raise_for_status()
    out = {}
    for item in ET.fromstring(response.content).iter("{DAV:}response"):
        href = unquote(item.findtext("{DAV:}href") or "")
        etag = item.findtext(".//{DAV:}getetag")
        if etag and not href.endswith("/"):
            out[href.rsplit("/", 1)[1]] = etag
    return out


def changed_texts(client: httpx.Client, name: str, before: dict[str, str]) -> dict[str, str]:
    """The objects whose etag is no longer `before`'s: name → text now."""
    now = etags(client, name)
    names = [n for n, etag in now.items() if before.get(n) != etag]
    return {n: client.get(f"/{USER}/{name}/{quote(n)}").text for n in names}


def copy_calendar(server: Radicale, pristine: str, name: str) -> None:
    """A copy of a collection as Radicale stored it (files, caches, props), made on disk."""
    shutil.copytree(server.collection_dir(pristine), server.collection_dir(name))


# --- running calsync and the peer ----------------------------------------------------------


@dataclass
class Run:
    seconds: float
    requests: Requests
    output: dict[str, Any]
    exit_code: int = 0
    cpu_seconds: float = 0.0  # user + system time of the process

    def counts(self) -> str:
        """calsync's own account (--json): occurrences, updated, failed."""
        keys = ("occurrences", "updated", "failed")
        found = [f"{self.output[k]} {k}" for k in keys if k in self.output]
        return (", ".join(found) or "no report") + (
            f", exit {self.exit_code}" if self.exit_code else "")


def timed(command: Sequence[str], env: dict[str, str], log: RequestLog, *,
          may_fail: bool = False) -> Run:
    """Run `command` to its end: wall time, CPU time and memory of the process, the requests
    Radicale saw meanwhile, its JSON output. Exit code 1 is kept only when `may_fail`."""
    mark = log.mark()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - began
        process.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if code != 0 and not (may_fail and code == 1):
        raise RuntimeError(f"{' '.join(command[:3])}... exited {code}:\n"
                           f"{stdout[-2000:]}\n{stderr[-4000:]}")
    try:
        output = json.loads(stdout) if stdout.strip() else {}
    except json.JSONDecodeError:
        output = {"stdout": stdout[-2000:]}
    if code:
        output["stderr"] = stderr[-2000:]
    return Run(seconds, log.since(mark), output, code,
               round(usage.ru_utime + usage.ru_stime, 3))


_FROM_SOURCE = """import sys
# the editable install's import hook would win over sys.path: drop it
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, {source!r})
from calsync.cli import main
main()
"""


def calsync_command(profile: Path | None, source: Path | None, work: Path) -> list[str]:
    """The installed `calsync`; or from the `source` tree; or under cProfile."""
    exe = Path(sys.executable).parent / "calsync"
    if source is None and profile is None and exe.is_file():
        return [str(exe)]
    script = work / "run_calsync.py"
    script.write_text(_FROM_SOURCE.format(source=str(source or ROOT)))
    if profile is None:
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "cProfile", "-o", str(profile), str(script)]


_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>\n<C:calendar-query xmlns:D="DAV:" '
    'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/></D:prop>'
    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/>'
    "</C:comp-filter></C:filter></C:calendar-query>"
)


def peer_worker(spec_path: str) -> None:
    """The raw cost, by hand with the caldav library: one calendar-query REPORT that fetches
    the whole calendar, then one If-Match PUT per object that changes."""
    began = time.perf_counter()
    from caldav.davclient import DAVClient

    spec = json.loads(Path(spec_path).read_text())
    calendar = spec["calendar"]
    with DAVClient(url=spec["url"], username=USER, password=PASSWORD,
                   enable_rfc6764=False) as client:
        found = client.report(calendar, _QUERY, depth=1).parse_calendar_query()
        by_name = {r.href.rsplit("/", 1)[1]: r for r in found}
        for name, text in spec["texts"].items():
            response = client.put(calendar + quote(name), text, {
                "Content-Type": "text/calendar; charset=utf-8",
                "If-Match": str(by_name[name].etag)})
            if response.status >= 300:
                raise SystemExit(f"PUT {name}: {response.status}")
    print(json.dumps({"objects": len(found), "written": len(spec["texts"]),
                      "in_process_seconds": time.perf_counter() - began}))


# --- one size ------------------------------------------------------------------------------


@dataclass
class Round:
    first: Run
    peer_first: Run
    idle: Run
    new_usage: Run
    peer_new: Run
    first_written: int
    new_written: int
    fresh_state: Run | None = None  # the synced calendar again, from an empty state dir


@dataclass
class Size:
    series: int
    others: int
    records: int
    corpus_mb: float
    window: tuple[str, str]
    rounds: list[Round] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)


def sync_env(work: Path, state: Path, logs: Sequence[Path]) -> dict[str, str]:
    """The environment of a calsync run: its own home, config, state dir and logs."""
    config = work / "config.toml"
    config.write_text("# the sync benchmark: every setting at its default\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALSYNC_", "CLAUDE_"))}
    env.update(HOME=str(work / "home"), CALSYNC_STATE_DIR=str(state),
               CALSYNC_PASSWORD=PASSWORD, CALSYNC_CONFIG=str(config),
               CLAUDE_CONFIG_DIR=",".join(str(p) for p in logs), TZ=ZONE,
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    return env


def measure_size(args: argparse.Namespace, series_count: int, work: Path) -> Size:
    today, now = date.today(), datetime.now(UTC)
    first_day = year_start(today)
    window = (first_day.isoformat(), (first_day + timedelta(weeks=WEEKS, days=-1)).isoformat())
    sessions, series = session_objects(series_count, first_day)
    logs = work / "claude"
    records = write_sessions(logs, corpus_plan(series, now, args.seed), args.seed)
    megabytes = sum(p.stat().st_size for p in logs.rglob("*.jsonl")) / 1e6
    size = Size(series_count, args.others, records, round(megabytes, 1), window)
    server = radicale_config(work, args.auth_delay, args.report_limit)
    began = time.perf_counter()
    populate(server.config, "pristine", sessions + other_objects(args.others, args.seed, today))
    print(f"## {series_count} series + {args.others} other events, stored in "
          f"{time.perf_counter() - began:.0f} s; {records} usage records ({megabytes:.1f} MB); "
          f"window {window[0]} to {window[1]}", file=sys.stderr)
    with running(server), dav_client(server) as client:
        log = RequestLog(server.log)
        pristine = etags(client, "pristine")  # also warms Radicale up
        for index in range(args.repeat):
            trial = Trial(server, client, log, work / f"round-{index}", pristine, window,
                          source=args.source)
            size.rounds.append(trial.run(series, logs, now))
            print(f"   round {index + 1}: {summary(size.rounds[-1])}", file=sys.stderr)
        if args.profile:  # one more round under cProfile, not in the table
            trial = Trial(server, client, log, work / "profiled", pristine, window,
                          profiles=work / "profiles", source=args.source)
            print(f"   profiled: {summary(trial.run(series, logs, now))}", file=sys.stderr)
            size.profiles = {p.stem: top_functions(p) for p in sorted(
                (work / "profiles").glob("*.prof"))}
    return size


@dataclass
class Trial:
    """One round: fresh copies of the calendar for calsync and the peer, a fresh state dir."""

    server: Radicale
    client: httpx.Client
    log: RequestLog
    work: Path
    pristine: dict[str, str]
    window: tuple[str, str]
    profiles: Path | None = None  # run calsync under cProfile, one file per step here
    source: Path | None = None    # run calsync from this source tree

    def calsync(self, calendar: str, env: dict[str, str], step: str) -> Run:
        profile = None
        if self.profiles is not None:
            self.profiles.mkdir(exist_ok=True)
            profile = self.profiles / f"{step}.prof"
        command = [*calsync_command(profile, self.source, self.work), "sync", "--calendar",
                   self.server.calendar_url(calendar), "--username", USER,
                   "--from", self.window[0], "--to", self.window[1], "--json"]
        return timed(command, env, self.log, may_fail=True)  # 1: some objects failed

    def peer(self, calendar: str, texts: dict[str, str]) -> Run:
        spec = self.work / "peer.json"
        spec.write_text(json.dumps({"url": self.server.url,
                                    "calendar": self.server.calendar_url(calendar),
                                    "texts": texts}))
        return timed([sys.executable, str(Path(__file__).resolve()), PEER_MODE, str(spec)],
                     dict(os.environ), self.log, may_fail=True)

    def run(self, series: Sequence[SessionSeries], logs: Path, now: datetime) -> Round:
        ours, theirs = f"calsync-{self.work.name}", f"peer-{self.work.name}"
        extra = self.work / "new-usage"
        extra.mkdir(parents=True)
        for name in (ours, theirs):
            copy_calendar(self.server, "pristine", name)
        env = sync_env(self.work, self.work / "state", [logs, extra])
        try:
            first = self.calsync(ours, env, "1-first")
            written = changed_texts(self.client, ours, self.pristine)
            peer_first = self.peer(theirs, written)
            idle = self.calsync(ours, env, "2-idle")
            before = etags(self.client, ours)
            seed = zlib.crc32(self.work.name.encode())
            write_sessions(extra, new_usage_plan(series, now), seed=seed)
            new_usage = self.calsync(ours, env, "3-new-usage")
            rewritten = changed_texts(self.client, ours, before)
            peer_new = self.peer(theirs, rewritten)
            before = etags(self.client, ours)
            texts = {n: self.client.get(f"/{USER}/{ours}/{quote(n)}").text for n in rewritten}
            fresh = self.calsync(ours, sync_env(self.work, self.work / "state-2", [logs, extra]),
                                 "4-fresh-state")
            keep_diffs(self.work / "fresh-state-diffs", written | texts,
                       changed_texts(self.client, ours, before))
        finally:
            for name in (ours, theirs):
                shutil.rmtree(self.server.collection_dir(name), ignore_errors=True)
        return Round(first, peer_first, idle, new_usage, peer_new, len(written), len(rewritten),
                     fresh)


def _one(label: str, run: Run) -> str:
    own = f" [{run.counts()}]" if "occurrences" in run.output or run.exit_code else ""
    return (f"{label} {run.seconds:.2f} s (cpu {run.cpu_seconds:.1f} s) "
            f"{run.requests.describe()}{own}")


def keep_diffs(folder: Path, old: dict[str, str], new: dict[str, str]) -> None:
    """Unified diffs of objects a run changed, for a person to read (kept with --keep)."""
    import difflib

    folder.mkdir(exist_ok=True)
    for name, text in new.items():
        diff = difflib.unified_diff(old.get(name, "").splitlines(), text.splitlines(),
                                    "before", "after", lineterm="")
        (folder / f"{name}.diff").write_text("\n".join(diff) + "\n")
        (folder / f"{name}.before").write_text(old.get(name, ""))
        (folder / f"{name}.after").write_text(text)


def summary(r: Round) -> str:
    return "; ".join([
        _one("first", r.first) + f", {r.first_written} objects changed",
        _one("peer", r.peer_first), _one("idle", r.idle),
        _one("10 new", r.new_usage) + f", {r.new_written} objects changed",
        _one("peer", r.peer_new),
        *([_one("fresh state", r.fresh_state)] if r.fresh_state else [])])


def top_functions(path: Path) -> str:
    """Where the time goes: calsync's own functions by cumulative time, then own time."""
    import io

    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("cumulative").print_stats(r"/calsync/(?!cli|__main__)", 25)
    stats.sort_stats("tottime").print_stats(12)
    prefixes = (str(ROOT) + "/", str(Path(json.__file__).parent) + "/",
                *{p + "/" for p in sys.path if p.endswith("site-packages")})
    text = out.getvalue()
    for prefix in prefixes:
        text = text.replace(prefix, "")
    return "\n".join(line for line in text.splitlines() if line.strip() and not
                     line.lstrip().startswith(("Ordered", "List", "ncalls")) and
                     str(path) not in line)


# --- the table -----------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _time(runs: Sequence[Run]) -> str:
    """Median wall time and median CPU time of the runs that succeeded."""
    good = [r for r in runs if r.exit_code == 0]
    if not good:
        return "failed"
    text = (f"{_median([r.seconds for r in good]):.2f} s "
            f"(cpu {_median([r.cpu_seconds for r in good]):.1f})")
    return text if len(good) == len(runs) else f"{text}, {len(runs) - len(good)} failed"


def _ratio(ours: Sequence[Run], theirs: Sequence[Run]) -> float | None:
    a = [r.seconds for r in ours if r.exit_code == 0]
    b = [r.seconds for r in theirs if r.exit_code == 0]
    return _median(a) / _median(b) if a and b else None


def _requests(runs: Sequence[Run]) -> str:
    """Request counts of the runs: one figure when all rounds agree."""
    described = {r.requests.describe() for r in runs}
    return described.pop() if len(described) == 1 else " / ".join(sorted(described))


def table(sizes: Sequence[Size]) -> str:
    rows = [
        "| series | objects | first sync | requests | peer (caldav) | requests | ratio "
        "| idle re-sync | requests | 10 new | requests |",
        "|---:|---:|---:|---|---:|---|---:|---:|---|---:|---|",
    ]
    for s in sizes:
        firsts, peers = [r.first for r in s.rounds], [r.peer_first for r in s.rounds]
        ratio = _ratio(firsts, peers)
        idle, new = [r.idle for r in s.rounds], [r.new_usage for r in s.rounds]
        rows.append(
            f"| {s.series} | {s.series + s.others} | {_time(firsts)} | {_requests(firsts)} "
            f"| {_time(peers)} | {_requests(peers)} "
            f"| {'n/a' if ratio is None else f'{ratio:.2f}x'} "
            f"| {_time(idle)} | {_requests(idle)} | {_time(new)} | {_requests(new)} |")
    return "\n".join(rows)


def _failures(size: Size) -> list[str]:
    out = []
    for index, r in enumerate(size.rounds, 1):
        for label, run in (("first sync", r.first), ("peer", r.peer_first),
                           ("idle re-sync", r.idle), ("10 new", r.new_usage),
                           ("peer after 10 new", r.peer_new),
                           ("sync from a fresh state dir", r.fresh_state)):
            if run is None:
                continue
            if run.exit_code or run.output.get("failed"):
                why = (run.output.get("stderr") or "").strip().splitlines()[-1:] or ["?"]
                out.append(f"- {size.series} series, round {index}: {label} FAILED "
                           f"(exit {run.exit_code}, requests {run.requests.describe()}, "
                           f"HTTP statuses {run.requests.statuses}): {why[0][:200]}")
    return out


def _fresh(size: Size) -> list[str]:
    runs = [r.fresh_state for r in size.rounds if r.fresh_state is not None]
    if not runs:
        return []
    return [f"- {size.series} series: the synced calendar from an empty state dir (a new "
            f"machine): {_time(runs)}, {_requests(runs)}"]


def verdicts(sizes: Sequence[Size]) -> list[str]:
    """The targets of issue 4 §8, met or missed, with the numbers."""
    out = []
    for s in sizes:
        ratio = _ratio([r.first for r in s.rounds], [r.peer_first for r in s.rounds])
        new_ratio = _ratio([r.new_usage for r in s.rounds], [r.peer_new for r in s.rounds])
        idle = max(r.idle.requests.total for r in s.rounds)
        puts = {r.new_usage.requests.methods.get("PUT", 0) for r in s.rounds}
        other = max(r.new_usage.requests.total - r.new_usage.requests.methods.get("PUT", 0)
                    for r in s.rounds)
        out += [
            f"- {s.series} series: first sync {ratio:.2f}x the caldav peer (target 1.5x): "
            f"{'met' if ratio <= 1.5 else 'MISSED'}" if ratio is not None else
            f"- {s.series} series: first sync vs the caldav peer: no ratio (a run failed)",
            f"- {s.series} series: 10 new {new_ratio:.2f}x the caldav peer doing the same "
            "10 PUTs after one calendar-query" if new_ratio is not None else
            f"- {s.series} series: 10 new vs the caldav peer: no ratio (a run failed)",
            f"- {s.series} series: idle re-sync {idle} requests (target at most 2): "
            f"{'met' if idle <= 2 else 'MISSED'}",
            f"- {s.series} series: 10 new: PUTs {sorted(puts)}, {other} other requests "
            f"(target 10 and at most 3): "
            f"{'met' if puts == {NEW_USAGE_OCCURRENCES} and other <= 3 else 'MISSED'}",
            *_fresh(s),
            *_failures(s),
        ]
    return out


def export(rev: str) -> Path:
    """calsync as committed at `rev`, in a directory of its own (git archive)."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev],
                            capture_output=True, text=True, check=True).stdout.strip()
    target = WORK / f"calsync-{commit}"
    if not (target / "calsync").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "calsync"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    (target / "REVISION").write_text(commit)
    return target


def describe(source: Path | None) -> str:
    """Which calsync ran: the exported revision, or the working tree's HEAD and its state."""
    if source is not None and (source / "REVISION").is_file():
        return f"at {(source / 'REVISION').read_text()}"
    if source is not None:
        return f"from {source}"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "calsync"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"at {head}" + (" with uncommitted changes in calsync/" if dirty else "")


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.system()} "
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", default="20",
                        help="weekly session series; a comma list runs each size (20,100,500)")
    parser.add_argument("--others", type=int, default=4980, help="other events (4980)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size (3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--auth-delay", type=float, default=0.0,
                        help="Radicale's [auth] delay in seconds (0 here; Radicale's own "
                        "default is 1, a random 0.5-1.5 s on every 401)")
    parser.add_argument("--report-limit", type=int, metavar="N",
                        help="Radicale's [reporting] max_expand_occurrence: the VEVENTs one "
                        "REPORT may return (Radicale's default: 10000)")
    parser.add_argument("--profile", action="store_true",
                        help="then one more round with calsync under cProfile; print the top")
    parser.add_argument("--source", type=Path, metavar="DIR",
                        help="run calsync from this source tree (to measure a change)")
    parser.add_argument("--at", metavar="REV",
                        help="run calsync as committed at this git revision (exported with "
                        "git archive), so that edits made meanwhile do not mix into the run")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    before = machine()
    if args.at:
        args.source = export(args.at)
    version = describe(args.source)
    sizes = []
    for count in (int(x) for x in args.series.split(",")):
        WORK.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"sync{count}.", dir=WORK))
        try:
            sizes.append(measure_size(args, count, work))
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    print(f"\ncalsync {version}. Started {before}; finished with load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}. Median of {args.repeat} "
          f"round(s); wall time (and CPU time of that process, s); requests as counted in "
          "Radicale's log.\n")
    print(table(sizes))
    print("\n" + "\n".join(verdicts(sizes)))
    for s in sizes:
        for step, text in s.profiles.items():
            print(f"\ncProfile of calsync, {s.series} series, {step} (cumulative):\n{text}")
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in sizes], indent=1, default=str))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == PEER_MODE:
        peer_worker(sys.argv[2])
    else:
        main()
