"""The contract every backend passes: `BackendContract`.

How to use it for a new backend: subclass it in a `test_*.py` module under a name that
starts with `Test`, and provide a `backend` fixture that yields an EMPTY collection, fresh
for every test (the tests create fixed UIDs and expect to see only their own objects):

    from tests.backends.contract import BackendContract

    class TestRadicale(BackendContract):
        @pytest.fixture
        def backend(self, radicale_calendar):     # a new empty collection per test
            return CaldavBackend(radicale_calendar.url, ...)

        # optional: a second, independent handle on the same collection as `backend`
        # (another process would open one like this); the default reuses `backend`.
        @pytest.fixture
        def make_backend(self, backend, radicale_calendar):
            return lambda: CaldavBackend(radicale_calendar.url, ...)

        # optional: an href that does not exist, given one that does (default: the known
        # href with the UID part replaced, which fits `<uid>`, `<uid>.ics` and URL paths).
        def missing_href(self, known_href: str, known_uid: str) -> str: ...

The class name has no `Test` prefix, so pytest only collects it through subclasses. To skip
one test for one server, override it in the subclass with `pytest.skip("why")`.

Texts are compared semantically (parsed VEVENTs, property values and parameters), because
servers may re-serialise what they store. Etags may be None after a write (CalDAV servers
need not return one); the tests then read the etag back with `list()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from icalendar import Calendar

from calsync.backends import Backend
from calsync.errors import PreconditionFailed, ServerError
from calsync.model import CalendarObject

VOLATILE = {"DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "CREATED"}

BERLIN = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
X-LIC-LOCATION:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""


def crlf(text: str) -> str:
    """Content lines end in CRLF (RFC 5545 3.1)."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def calendar(*components: str) -> str:
    return crlf(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//calsync//contract tests//EN\n"
        + "".join(components)
        + "END:VCALENDAR\n"
    )


def vevent(uid: str, summary: str = "Session", *, start: str = "20261207T090000Z",
           end: str = "20261207T110000Z", extra: str = "") -> str:
    return (
        f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20261201T000000Z\nDTSTART:{start}\n"
        f"DTEND:{end}\nSUMMARY:{summary}\n{extra}END:VEVENT\n"
    )


def single_event(uid: str, summary: str = "Session") -> str:
    return calendar(vevent(uid, summary, extra="X-CLAUDE-PROJECT:calsync\n"))


def recurring_event(uid: str) -> str:
    """A weekly series in Europe/Berlin, plus two overrides (one moved, one re-titled)."""
    master = vevent(
        uid, "Weekly planning", start="TZID=Europe/Berlin:20261207T090000",
        end="TZID=Europe/Berlin:20261207T100000",
        extra="RRULE:FREQ=WEEKLY;COUNT=6\nX-CLAUDE-TOKEN-BUDGET-TOTAL:100000\n",
    ).replace("DTSTART:TZID=", "DTSTART;TZID=").replace("DTEND:TZID=", "DTEND;TZID=")
    moved = (
        f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20261201T000000Z\n"
        "RECURRENCE-ID;TZID=Europe/Berlin:20261214T090000\n"
        "DTSTART;TZID=Europe/Berlin:20261214T140000\nDTEND;TZID=Europe/Berlin:20261214T150000\n"
        "SUMMARY:Weekly planning (moved)\nEND:VEVENT\n"
    )
    actuals = (
        f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20261201T000000Z\n"
        "RECURRENCE-ID;TZID=Europe/Berlin:20261221T090000\n"
        "DTSTART;TZID=Europe/Berlin:20261221T090000\nDTEND;TZID=Europe/Berlin:20261221T100000\n"
        "SUMMARY:Weekly planning\nX-CLAUDE-ACTUAL-TOKENS-TOTAL:74500\n"
        "X-CLAUDE-STATUS:completed\nEND:VEVENT\n"
    )
    return calendar(BERLIN, master, moved, actuals)


NON_ASCII_SUMMARY = "Planung ✅ café crème, naïve Ölförderung — 日本語のセッション 🚀🧪 " * 2
NON_ASCII_DESCRIPTION = (
    "Project: café-app\\nSession Type: Implementation\\n\\nTOKEN BUDGET:\\n"
    "Total: 100\\,000 tokens\\n\\nGOALS:\\n1. ✅ Ümlaute überall\\; done\\n2. 🚀 Launch"
)


def non_ascii_event(uid: str) -> str:
    return calendar(
        # TEXT escapes its commas (RFC 5545 3.3.11); Radicale reads a bare one as a list.
        vevent(uid, NON_ASCII_SUMMARY.replace(",", "\\,"),
               extra=f"DESCRIPTION:{NON_ASCII_DESCRIPTION}\n")
    )


def _events(text: str) -> dict[tuple[str, str | None], dict[str, list[Any]]]:
    """VEVENTs by (UID, RECURRENCE-ID): property name -> sorted (value, params) pairs."""
    result: dict[tuple[str, str | None], dict[str, list[Any]]] = {}
    for event in Calendar.from_ical(text).walk("VEVENT"):
        props: dict[str, list[Any]] = {}
        for name, value in event.property_items(recursive=False):
            if name in VOLATILE or name in ("BEGIN", "END") or name.startswith("X-RADICALE"):
                continue
            params = sorted((k, str(v)) for k, v in getattr(value, "params", {}).items())
            props.setdefault(name, []).append((value.to_ical(), params))
        rid = event.get("RECURRENCE-ID")
        key = (str(event["UID"]), rid.to_ical().decode() if rid is not None else None)
        result[key] = {k: sorted(v) for k, v in props.items()}
    return result


def assert_same_events(actual: str, expected: str) -> None:
    assert _events(actual) == _events(expected)


def etag_of(backend: Backend, href: str) -> str | None:
    return dict(backend.list())[href]


class BackendContract:
    """Behaviour shared by every backend (memory, .ics file, CalDAV servers)."""

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError("subclasses provide a `backend` fixture (an empty collection)")

    @pytest.fixture
    def make_backend(self, backend: Backend) -> Callable[[], Backend]:
        return lambda: backend

    def missing_href(self, known_href: str, known_uid: str) -> str:
        return known_href.replace(known_uid, "calsync-contract-missing")

    def create(self, backend: Backend, text: str, uid: str) -> tuple[str, str | None]:
        href, etag = backend.create(text, uid=uid)
        return href, etag if etag is not None else etag_of(backend, href)

    # --- reading what was written ---------------------------------------------------------

    def test_empty_collection_lists_nothing(self, backend: Backend) -> None:
        assert list(backend.list()) == []

    def test_create_then_list_and_get_round_trip(self, backend: Backend) -> None:
        text = single_event("contract-roundtrip@calsync.test", "Write the backend")
        href, etag = self.create(backend, text, "contract-roundtrip@calsync.test")
        assert list(backend.list()) == [(href, etag)]
        obj = backend.get(href)
        assert (obj.href, obj.etag) == (href, etag)
        assert_same_events(obj.text, text)

    def test_get_many_returns_every_requested_object(self, backend: Backend) -> None:
        uids = [f"contract-many-{n}@calsync.test" for n in range(3)]
        hrefs = {self.create(backend, single_event(uid, f"Session {uid}"), uid)[0]: uid
                 for uid in uids}
        objects = list(backend.get_many(list(hrefs)))
        assert sorted(o.href for o in objects) == sorted(hrefs)
        for obj in objects:
            uid = hrefs[obj.href]
            assert_same_events(obj.text, single_event(uid, f"Session {uid}"))

    def test_get_of_an_unknown_href_is_a_404(self, backend: Backend) -> None:
        uid = "contract-known@calsync.test"
        href, _ = self.create(backend, single_event(uid), uid)
        with pytest.raises(ServerError) as info:
            backend.get(self.missing_href(href, uid))
        assert info.value.status == 404

    def test_master_and_overrides_are_one_object(self, backend: Backend) -> None:
        uid = "contract-series@calsync.test"
        text = recurring_event(uid)
        href, _ = self.create(backend, text, uid)
        assert [h for h, _ in backend.list()] == [href]
        obj = backend.get(href)
        assert_same_events(obj.text, text)
        assert len(Calendar.from_ical(obj.text).walk("VEVENT")) == 3

    def test_non_ascii_text_survives(self, backend: Backend) -> None:
        uid = "contract-unicode-é🚀@calsync.test"
        text = non_ascii_event(uid)
        href, _ = self.create(backend, text, uid)
        obj = backend.get(href)
        assert_same_events(obj.text, text)
        event = Calendar.from_ical(obj.text).walk("VEVENT")[0]
        assert str(event["SUMMARY"]) == NON_ASCII_SUMMARY
        assert "1. ✅ Ümlaute überall; done\n2. 🚀 Launch" in str(event["DESCRIPTION"])

    # --- conditional writes ---------------------------------------------------------------

    def test_put_changes_the_text_and_the_etag(self, backend: Backend) -> None:
        uid = "contract-put@calsync.test"
        href, etag = self.create(backend, single_event(uid, "Before"), uid)
        new_text = single_event(uid, "After")
        new_etag = backend.put(CalendarObject(href, etag, new_text), etag=etag)
        new_etag = new_etag if new_etag is not None else etag_of(backend, href)
        assert new_etag != etag
        assert etag_of(backend, href) == new_etag
        assert_same_events(backend.get(href).text, new_text)

    def test_put_leaves_other_objects_alone(self, backend: Backend) -> None:
        one, two = "contract-one@calsync.test", "contract-two@calsync.test"
        href_one, etag_one = self.create(backend, single_event(one, "One"), one)
        href_two, etag_two = self.create(backend, single_event(two, "Two"), two)
        backend.put(CalendarObject(href_one, etag_one, single_event(one, "One, edited")),
                    etag=etag_one)
        assert etag_of(backend, href_two) == etag_two
        assert_same_events(backend.get(href_two).text, single_event(two, "Two"))

    def test_put_with_a_stale_etag_fails(self, backend: Backend) -> None:
        uid = "contract-stale@calsync.test"
        href, old = self.create(backend, single_event(uid, "First"), uid)
        backend.put(CalendarObject(href, old, single_event(uid, "Second")), etag=old)
        with pytest.raises(PreconditionFailed):
            backend.put(CalendarObject(href, old, single_event(uid, "Third")), etag=old)
        assert_same_events(backend.get(href).text, single_event(uid, "Second"))

    def test_create_of_an_existing_uid_fails(self, backend: Backend) -> None:
        uid = "contract-twice@calsync.test"
        href, etag = self.create(backend, single_event(uid, "Original"), uid)
        with pytest.raises(PreconditionFailed):
            backend.create(single_event(uid, "Impostor"), uid=uid)
        assert etag_of(backend, href) == etag
        assert_same_events(backend.get(href).text, single_event(uid, "Original"))

    def test_an_override_added_by_put_joins_its_series(self, backend: Backend) -> None:
        uid = "contract-series-put@calsync.test"
        text = recurring_event(uid)
        without_last = text.split("BEGIN:VEVENT")
        two_events = "BEGIN:VEVENT".join(without_last[:3]) + "END:VCALENDAR\r\n"
        href, etag = self.create(backend, two_events, uid)
        backend.put(CalendarObject(href, etag, text), etag=etag)
        assert [h for h, _ in backend.list()] == [href]
        assert_same_events(backend.get(href).text, text)

    def test_a_second_handle_sees_writes_and_conflicts(
        self, backend: Backend, make_backend: Callable[[], Backend]
    ) -> None:
        uid = "contract-handles@calsync.test"
        href, etag = self.create(backend, single_event(uid, "Mine"), uid)
        other = make_backend()
        assert_same_events(other.get(href).text, single_event(uid, "Mine"))
        other.put(CalendarObject(href, etag, single_event(uid, "Theirs")), etag=etag)
        with pytest.raises(PreconditionFailed):
            backend.put(CalendarObject(href, etag, single_event(uid, "Mine again")), etag=etag)
        assert_same_events(backend.get(href).text, single_event(uid, "Theirs"))
