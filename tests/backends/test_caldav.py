"""The CalDAV backend against real Radicale and strict Xandikos servers, and replayed.

- `TestRadicale` / `TestXandikos` run the backend contract on each server.
- The module-level tests run against both servers (`dav_server`) or a misbehaving one.
- `TestRecordedRadicale` replays cassettes under tests/backends/cassettes/ without any
  server. A missing cassette is recorded from the suite's Radicale on the next run: to
  re-record one, delete its file and run this module.
"""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from icalendar import Calendar

from calsync.backends import Backend, open_backend
from calsync.backends import caldav as caldav_module
from calsync.backends.caldav import CaldavBackend, name_for_uid
from calsync.config import Settings, parse_config
from calsync.errors import (
    AuthError,
    ConfigError,
    PreconditionFailed,
    ServerError,
    SyncTokenInvalid,
)
from calsync.model import CalendarObject
from tests.backends.contract import (
    BackendContract,
    assert_same_events,
    calendar,
    single_event,
    vevent,
)
from tests.servers import DavServer, free_port, make_calendar, run_xandikos


def open_caldav(server: DavServer, url: str, **options: Any) -> CaldavBackend:
    return CaldavBackend(url, username=server.username, password=server.password,
                         timeout_seconds=10, **options)


# --- the contract, on both servers --------------------------------------------------------


class TestRadicale(BackendContract):
    @pytest.fixture
    def calendar_url(self, radicale_server: DavServer, request: pytest.FixtureRequest) -> str:
        return make_calendar(radicale_server, request.node.name)

    @pytest.fixture
    def backend(self, radicale_server: DavServer,
                calendar_url: str) -> Iterator[CaldavBackend]:
        with open_caldav(radicale_server, calendar_url) as backend:
            yield backend

    @pytest.fixture
    def make_backend(self, radicale_server: DavServer,
                     calendar_url: str) -> Callable[[], Backend]:
        return lambda: open_caldav(radicale_server, calendar_url)



class TestXandikos(BackendContract):
    @pytest.fixture
    def calendar_url(self, xandikos_server: DavServer, request: pytest.FixtureRequest) -> str:
        return make_calendar(xandikos_server, request.node.name)

    @pytest.fixture
    def backend(self, xandikos_server: DavServer,
                calendar_url: str) -> Iterator[CaldavBackend]:
        with open_caldav(xandikos_server, calendar_url) as backend:
            yield backend

    @pytest.fixture
    def make_backend(self, xandikos_server: DavServer,
                     calendar_url: str) -> Callable[[], Backend]:
        return lambda: open_caldav(xandikos_server, calendar_url)


# --- both servers: what the contract does not say -----------------------------------------


@pytest.fixture
def caldav_backend(dav_server: DavServer, new_calendar: str) -> Iterator[CaldavBackend]:
    with open_caldav(dav_server, new_calendar) as backend:
        yield backend


def test_reads_cost_one_request_each(caldav_backend: CaldavBackend) -> None:
    for n in range(3):
        caldav_backend.create(single_event(f"count-{n}@calsync.test"), uid=f"count-{n}")
    before = caldav_backend.requests
    hrefs = [href for href, _ in caldav_backend.list()]
    objects = caldav_backend.get_many(hrefs)
    assert caldav_backend.requests - before == 2
    assert sorted(o.href for o in objects) == sorted(hrefs)
    assert all(o.etag for o in objects)


def test_get_many_leaves_out_what_is_gone(caldav_backend: CaldavBackend) -> None:
    href, etag = caldav_backend.create(single_event("here@calsync.test"), uid="here")
    gone = caldav_backend.path + "gone.ics"
    objects = caldav_backend.get_many([gone, href])
    assert [(o.href, o.etag) for o in objects] == [(href, etag)]
    assert caldav_backend.get_many([]) == []


def test_the_text_is_stored_as_given(caldav_backend: CaldavBackend) -> None:
    uid = "as-given@calsync.test"
    text = calendar(vevent(uid, extra="SEQUENCE:3\nX-CLAUDE-PROJECT:calsync\n"))
    href, etag = caldav_backend.create(text, uid=uid)
    caldav_backend.put(CalendarObject(href, etag, text), etag=etag)
    stored = Calendar.from_ical(caldav_backend.get(href).text)
    event = stored.walk("VEVENT")[0]
    assert event["SEQUENCE"] == 3
    assert "METHOD" not in stored
    assert "ORGANIZER" not in event and "ATTENDEE" not in event


def test_a_stale_etag_is_a_412_from_the_server(caldav_backend: CaldavBackend) -> None:
    uid = "stale@calsync.test"
    href, etag = caldav_backend.create(single_event(uid, "One"), uid=uid)
    caldav_backend.put(CalendarObject(href, etag, single_event(uid, "Two")), etag=etag)
    with pytest.raises(PreconditionFailed) as info:
        caldav_backend.put(CalendarObject(href, etag, single_event(uid, "Three")), etag=etag)
    assert info.value.href == href
    assert str(info.value) == f"{href}: changed by someone else since it was read"


def test_an_odd_uid_gets_a_stable_name_of_its_own(caldav_backend: CaldavBackend) -> None:
    uid = "folder/with spaces?#1"
    href, _ = caldav_backend.create(single_event(uid), uid=uid)
    assert href == caldav_backend.path + name_for_uid(uid)
    assert "/" not in href.removeprefix(caldav_backend.path)
    assert str(caldav_backend.get(href).text).count("UID:folder/with spaces?#1") == 1


def test_sync_changes_reports_only_what_changed(caldav_backend: CaldavBackend) -> None:
    first = "sync-first@calsync.test"
    href_first, etag_first = caldav_backend.create(single_event(first), uid=first)
    changed, deleted, token = caldav_backend.sync_changes(None)
    assert (changed, deleted) == ([(href_first, etag_first)], [])

    before = caldav_backend.requests
    assert caldav_backend.sync_changes(token)[:2] == ([], [])
    assert caldav_backend.requests - before == 1  # an idle sync: one request

    second = "sync-second@calsync.test"
    href_second, etag_second = caldav_backend.create(single_event(second), uid=second)
    changed, deleted, token = caldav_backend.sync_changes(token)
    assert (changed, deleted) == ([(href_second, etag_second)], [])

    caldav_backend._send("DELETE", href_first, "", {})
    changed, deleted, _ = caldav_backend.sync_changes(token)
    assert (changed, deleted) == ([], [href_first])


def test_many_objects_are_read_in_batches(caldav_backend: CaldavBackend,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caldav_module, "MULTIGET_BATCH", 2)
    hrefs = [caldav_backend.create(single_event(f"batch-{n}@calsync.test"),
                                   uid=f"batch-{n}")[0] for n in range(5)]
    before = caldav_backend.requests
    objects = caldav_backend.get_many(reversed(hrefs))
    assert [o.href for o in objects] == hrefs[::-1]
    assert caldav_backend.requests - before == 3  # 2 + 2 + 1


def test_sync_objects_brings_the_changed_texts_in_the_same_request(
        caldav_backend: CaldavBackend, request: pytest.FixtureRequest) -> None:
    uid = "sync-data@calsync.test"
    href, etag = caldav_backend.create(single_event(uid), uid=uid)
    before = caldav_backend.requests
    objects, deleted, token = caldav_backend.sync_objects(None)
    assert caldav_backend.requests - before == 1
    assert [(o.href, o.etag) for o in objects] == [(href, etag)] and deleted == []
    if "radicale" in request.node.name:
        assert f"UID:{uid}" in objects[0].text
    else:  # Xandikos sends no calendar-data in sync-collection: the text is left empty
        assert objects[0].text == ""
    assert caldav_backend.sync_objects(token)[:2] == ([], [])


def test_a_refused_sync_token_asks_for_a_full_listing(caldav_backend: CaldavBackend) -> None:
    _, _, token = caldav_backend.sync_changes(None)
    with pytest.raises(SyncTokenInvalid):
        caldav_backend.sync_changes(token + "-not-a-token-of-this-server")


def test_an_idle_sync_costs_at_most_two_requests(dav_server: DavServer,
                                                 new_calendar: str) -> None:
    with open_caldav(dav_server, new_calendar) as first_run:
        first_run.create(single_event("idle@calsync.test"), uid="idle")
        _, _, token = first_run.sync_changes(None)
    with open_caldav(dav_server, new_calendar) as next_run:  # a new process: auth again
        assert next_run.sync_changes(token)[:2] == ([], [])
        assert next_run.requests <= 2


def test_the_calendar_is_found_by_display_name(dav_server: DavServer,
                                               new_calendar: str) -> None:
    display_name = new_calendar.rstrip("/").rsplit("/", 1)[1]
    with open_caldav(dav_server, dav_server.url, calendar_name=display_name.upper()) as found:
        assert found.list() == []
        assert found.location == new_calendar


def test_an_unknown_display_name_lists_the_calendars(dav_server: DavServer,
                                                     new_calendar: str) -> None:
    backend = open_caldav(dav_server, dav_server.url, calendar_name="No such calendar")
    with pytest.raises(ConfigError) as info:
        backend.list()
    message = str(info.value)
    assert "'No such calendar'" in message
    assert new_calendar.rstrip("/").rsplit("/", 1)[1] in message
    assert "\n" not in message


# --- failures a person meets --------------------------------------------------------------


def test_a_wrong_password_is_one_line(radicale_server: DavServer) -> None:
    url = make_calendar(radicale_server, "wrong password")
    backend = CaldavBackend(url, username="alice", password="not-the-password")
    with pytest.raises(AuthError) as info:
        backend.list()
    message = str(info.value)
    assert message.startswith(url + ": the server refused the credentials (check the username")
    assert "\n" not in message and "not-the-password" not in message


def test_another_users_calendar_is_refused(radicale_server: DavServer) -> None:
    backend = open_caldav(radicale_server, radicale_server.url + "bob/work/")
    with pytest.raises(AuthError):
        backend.list()


def test_a_server_that_is_down_fails_fast() -> None:
    origin = f"http://127.0.0.1:{free_port()}"
    backend = CaldavBackend(origin + "/alice/work/", timeout_seconds=5)
    started = time.monotonic()
    with pytest.raises(ServerError) as info:
        backend.list()
    assert time.monotonic() - started < 2
    assert info.value.status is None and info.value.transient
    assert str(info.value).startswith(f"/alice/work/: cannot reach {origin}: ")


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        backend = CaldavBackend(f"http://127.0.0.1:{port}/cal/", timeout_seconds=0.3)
        started = time.monotonic()
        with pytest.raises(ServerError) as info:
            backend.list()
    assert time.monotonic() - started < 3
    assert str(info.value) == f"/cal/: no answer from http://127.0.0.1:{port} within 0.3 s"
    assert info.value.transient


@pytest.mark.parametrize("url", ["ftp://example.com/cal/", "https://bob:pw@example.com/cal/"],
                         ids=["not-http", "password-in-url"])
def test_a_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        CaldavBackend(url)
    assert "pw" not in str(info.value)


# --- open_backend: from settings and the environment --------------------------------------


def radicale_settings(url: str, **calendar: str) -> Settings:
    options = {"url": url, "username": "alice", **calendar}
    return parse_config("[calendar]\n" + "".join(f"{k} = {v!r}\n" for k, v in options.items()))


def test_open_backend_uses_the_configured_password(radicale_server: DavServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    url = make_calendar(radicale_server, "opened")
    caplog.set_level(logging.DEBUG)
    backend = open_backend(url, settings=radicale_settings(url),
                           env={"CALSYNC_PASSWORD": "secret"})
    assert isinstance(backend, CaldavBackend)
    assert backend.list() == []
    basic = base64.b64encode(b"alice:secret").decode()
    assert "secret" not in caplog.text and basic not in caplog.text


def test_open_backend_finds_the_configured_calendar_by_name(radicale_server: DavServer) -> None:
    url = make_calendar(radicale_server, "Named Sessions")
    name = url.rstrip("/").rsplit("/", 1)[1]
    settings = radicale_settings(radicale_server.url, calendar_name=name)
    backend = open_backend(radicale_server.url, settings=settings,
                           env={"CALSYNC_PASSWORD": "secret"})
    assert backend.list() == [] and backend.location == url


def test_open_backend_without_a_password_is_refused(radicale_server: DavServer) -> None:
    url = make_calendar(radicale_server, "no password")
    backend = open_backend(url, settings=radicale_settings(url), env={})
    with pytest.raises(AuthError):
        backend.list()


def test_open_backend_opens_a_path_as_an_ics_file(tmp_path: Path) -> None:
    from calsync.backends.icsfile import IcsFileBackend

    path = tmp_path / "sessions.ics"
    backend = open_backend(str(path), settings=Settings(), env={})
    assert isinstance(backend, IcsFileBackend) and backend.location == str(path)


# --- a Xandikos that misbehaves on purpose ------------------------------------------------


class Quirks:
    """What the middleware in front of Xandikos does to the next requests."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.strip_put_etag = False
        self.fail_status: int | None = None
        self.retry_after: str | None = None


@pytest.fixture(scope="module")
def quirky_xandikos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DavServer,
                                                                                 Quirks]]:
    quirks = Quirks()

    @web.middleware
    async def misbehave(request: web.Request, handler: Any) -> web.StreamResponse:
        if quirks.fail_status:
            headers = {"Retry-After": quirks.retry_after} if quirks.retry_after else {}
            return web.Response(status=quirks.fail_status, headers=headers)
        response: web.StreamResponse = await handler(request)
        if quirks.strip_put_etag and request.method == "PUT":
            response.headers.popall("ETag", None)
        return response

    with run_xandikos(tmp_path_factory.mktemp("quirky"), [misbehave]) as server:
        yield server, quirks


@pytest.fixture
def quirky(quirky_xandikos: tuple[DavServer, Quirks],
           request: pytest.FixtureRequest) -> Iterator[tuple[CaldavBackend, Quirks]]:
    server, quirks = quirky_xandikos
    with open_caldav(server, make_calendar(server, request.node.name)) as backend:
        yield backend, quirks
    quirks.reset()


@pytest.mark.server
def test_a_put_without_etag_is_followed_by_a_read(quirky: tuple[CaldavBackend,
                                                                Quirks]) -> None:
    backend, quirks = quirky
    quirks.strip_put_etag = True
    href, etag = backend.create(single_event("no-etag@calsync.test"), uid="no-etag")
    assert etag is not None and backend.list() == [(href, etag)]
    new_etag = backend.put(CalendarObject(href, etag, single_event("no-etag@calsync.test",
                                                                   "Edited")), etag=etag)
    assert new_etag not in (None, etag) and backend.list() == [(href, new_etag)]


@pytest.mark.server
@pytest.mark.parametrize(("status", "retry_after", "seconds"),
                         [(503, "7", 7.0), (429, None, None), (500, None, None)],
                         ids=["503-retry-after", "429", "500"])
def test_server_failures_are_server_errors(quirky: tuple[CaldavBackend, Quirks], status: int,
                                           retry_after: str | None,
                                           seconds: float | None) -> None:
    backend, quirks = quirky
    quirks.fail_status, quirks.retry_after = status, retry_after
    with pytest.raises(ServerError) as info:
        backend.list()
    assert (info.value.status, info.value.retry_after) == (status, seconds)
    assert info.value.transient
    assert str(info.value).startswith(backend.path + ": ")


# --- cassettes: recorded from Radicale, replayed without a server -------------------------

CASSETTES = Path(__file__).parent / "cassettes"
REPLAY_URL = "http://radicale.invalid/alice/cassette-{name}/"


def scenario_round_trip(backend: CaldavBackend) -> None:
    one, two = "tape-one@calsync.test", "tape-two@calsync.test"
    href_one, etag_one = backend.create(single_event(one, "One"), uid=one)
    href_two, _ = backend.create(single_event(two, "Two"), uid=two)
    assert sorted(h for h, _ in backend.list()) == sorted([href_one, href_two])
    assert_same_events(backend.get(href_one).text, single_event(one, "One"))
    assert [o.href for o in backend.get_many([href_two, href_one])] == [href_two, href_one]
    new_etag = backend.put(CalendarObject(href_one, etag_one, single_event(one, "Uno")),
                           etag=etag_one)
    assert new_etag not in (None, etag_one)
    with pytest.raises(PreconditionFailed):
        backend.put(CalendarObject(href_one, etag_one, single_event(one, "Eins")), etag=etag_one)
    with pytest.raises(PreconditionFailed):
        backend.create(single_event(two, "Zwei"), uid=two)
    assert_same_events(backend.get(href_one).text, single_event(one, "Uno"))


def scenario_sync(backend: CaldavBackend) -> None:
    first = "tape-sync-1@calsync.test"
    href_first, etag_first = backend.create(single_event(first), uid=first)
    changed, deleted, token = backend.sync_changes(None)
    assert (changed, deleted) == ([(href_first, etag_first)], [])
    second = "tape-sync-2@calsync.test"
    href_second, etag_second = backend.create(single_event(second), uid=second)
    assert backend.sync_changes(token)[:2] == ([(href_second, etag_second)], [])
    with pytest.raises(SyncTokenInvalid):
        backend.sync_changes(token + "-forged")


def scenario_wrong_password(backend: CaldavBackend) -> None:
    with pytest.raises(AuthError) as info:
        backend.list()
    assert str(info.value).startswith(backend.location + ": the server refused the credentials")


SCENARIOS: dict[str, tuple[Callable[[CaldavBackend], None], str]] = {
    "round_trip": (scenario_round_trip, "secret"),
    "sync": (scenario_sync, "secret"),
    "wrong_password": (scenario_wrong_password, "not-the-password"),
}


def use_cassette(path: Path, record_mode: str, origin: str | None = None) -> Any:
    """vcrpy, matching on method + path + body; the Authorization header and the
    server's random port never reach the file."""
    import vcr  # type: ignore[import-untyped]

    def scrub(text: str) -> str:
        return text.replace(origin, "http://radicale.invalid") if origin else text

    def scrub_request(request: Any) -> Any:
        request.uri = scrub(request.uri)
        return request

    def scrub_response(response: Any) -> Any:
        body = response["body"]["string"]
        if isinstance(body, bytes) and origin and origin.encode() in body:
            response["body"]["string"] = scrub(body.decode()).encode()
        return response

    recorder = vcr.VCR(match_on=["method", "path", "body"], filter_headers=["authorization"],
                       before_record_request=scrub_request,
                       before_record_response=scrub_response, record_on_exception=False)
    return recorder.use_cassette(str(path), record_mode=record_mode)


@pytest.fixture
def cassette(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The scenario's cassette; recorded from the suite's Radicale if it is missing."""
    name = request.param
    path = CASSETTES / f"{name}.yaml"
    if path.exists():
        return path
    server: DavServer = request.getfixturevalue("radicale_server")
    scenario, password = SCENARIOS[name]
    url = make_calendar(server, f"cassette-{name}", unique=False)
    draft = tmp_path / path.name
    with use_cassette(draft, "once", server.url.rstrip("/")) as recording:
        scenario(CaldavBackend(url, username="alice", password=password))
    assert len(recording) > 0, f"{name}: the recording captured no HTTP requests"
    CASSETTES.mkdir(exist_ok=True)
    draft.replace(path)
    return path


class TestRecordedRadicale:
    """The scenarios again, from the cassettes alone: no server, no network."""

    @pytest.mark.parametrize("cassette", list(SCENARIOS), indirect=True)
    def test_replay(self, cassette: Path) -> None:
        name = cassette.stem
        scenario, password = SCENARIOS[name]
        with use_cassette(cassette, "none") as tape:
            assert len(tape) > 0, f"{cassette.name} holds no requests"
            backend = CaldavBackend(REPLAY_URL.format(name=name),
                                    username="alice", password=password)
            scenario(backend)
        assert tape.all_played
        assert backend.requests == len(tape)

    def test_no_secret_or_port_in_cassettes(self) -> None:
        texts = [path.read_text("utf-8") for path in CASSETTES.glob("*.yaml")]
        assert texts
        for text in texts:
            assert "Authorization" not in text and "127.0.0.1" not in text
            assert "secret" not in text and "not-the-password" not in text
