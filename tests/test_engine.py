"""Applying a sync plan: conflicts, faults, one failure never stopping the rest (calsync.engine).

The backend is the real memory backend; `Interfering` wraps it to do what a person or a
flaky server would do at the worst moment (an edit between read and write, a 503 ...).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from icalendar import Calendar

from calsync.backends.memory import MemoryBackend
from calsync.engine import RetryPolicy, apply
from calsync.errors import AuthError, ServerError
from calsync.planner import WriteObject, plan_object, plan_sync
from tests.unit.test_planner import BERLIN, PLAN, event, ics, knowledge, record


class Interfering:
    """A MemoryBackend whose next puts (per href) first run a hook or raise an error."""

    def __init__(self, inner: MemoryBackend) -> None:
        self.inner = inner
        self.location = inner.location
        self.before_put: dict[str, list] = {}
        self.puts = 0

    def list(self):
        return self.inner.list()

    def get(self, href):
        return self.inner.get(href)

    def get_many(self, hrefs):
        return self.inner.get_many(hrefs)

    def create(self, text, *, uid):
        return self.inner.create(text, uid=uid)

    def put(self, obj, *, etag):
        self.puts += 1
        queue = self.before_put.get(obj.href, [])
        if queue:
            action = queue.pop(0)
            if isinstance(action, BaseException):
                raise action
            action()
        return self.inner.put(obj, etag=etag)


def backend_with(*uids: str) -> Interfering:
    return Interfering(MemoryBackend({uid: ics(event(uid, *PLAN)) for uid in uids}))


def run(backend: Interfering, **kw):
    objects = backend.inner.get_many(h for h, _ in backend.inner.list())
    k = knowledge(list(objects), [record(datetime(2026, 11, 16, 9, 30, tzinfo=BERLIN))])
    plan = plan_sync(list(objects), k)
    waits: list[float] = []
    written: list[tuple[str, str | None]] = []
    report = apply(plan, backend, replan=lambda obj: plan_object(obj, k),
                   on_written=lambda d, etag: written.append((d.href, etag)),
                   sleep=waits.append, **kw)
    return report, waits, written


def prop(backend: Interfering, href: str, name: str) -> str:
    event_ = next(iter(Calendar.from_ical(backend.inner.get(href).text).walk("VEVENT")))
    return str(event_.get(name, ""))


def test_every_object_is_written_and_recorded():
    backend = backend_with("a", "b")
    report, waits, written = run(backend)
    assert (report.updated, report.unchanged, report.failed, report.exit_code) == (2, 0, (), 0)
    assert [href for href, _ in written] == ["a.ics", "b.ics"]
    assert written[0][1] == backend.inner.get("a.ics").etag
    assert prop(backend, "b.ics", "X-CLAUDE-STATUS") == "missed"  # "a" took the record
    assert waits == []


def test_an_edit_between_read_and_write_survives_with_the_actuals():
    backend = backend_with("a")

    def person_renames_it():
        obj = backend.inner.get("a.ics")
        backend.inner.put(obj.__class__(obj.href, obj.etag,
                                        obj.text.replace("SUMMARY:Session", "SUMMARY:Renamed")),
                          etag=obj.etag)

    backend.before_put["a.ics"] = [person_renames_it]
    report, _, _ = run(backend)
    assert report.conflicts == 1 and report.updated == 1 and report.exit_code == 0
    assert prop(backend, "a.ics", "SUMMARY") == "Renamed"
    assert prop(backend, "a.ics", "X-CLAUDE-ACTUAL-TOKENS-TOTAL") == "3000"


def test_endless_conflicts_fail_that_object_only():
    backend = backend_with("a", "b")

    def touch():
        obj = backend.inner.get("a.ics")
        backend.inner.put(obj, etag=obj.etag)  # same text, new etag: someone else's write

    backend.before_put["a.ics"] = [touch] * 10
    report, _, _ = run(backend, policy=RetryPolicy(conflicts=2))
    assert [f.href for f in report.failed] == ["a.ics"]
    assert "changed by someone else 3 times" in report.failed[0].message
    assert report.conflicts == 3
    assert prop(backend, "b.ics", "X-CLAUDE-STATUS") == "missed"  # "a" took the record
    assert report.exit_code == 1


def test_an_object_deleted_during_the_run_is_not_recreated():
    backend = backend_with("a")

    def delete():
        del backend.inner._items["a.ics"]

    backend.before_put["a.ics"] = [delete]
    report, _, _ = run(backend)
    assert report.failed == () and report.updated == 0
    assert backend.inner.list() == []


def test_transient_faults_are_retried_after_retry_after_then_written():
    backend = backend_with("a")
    backend.before_put["a.ics"] = [
        ServerError("a.ics", "busy", status=503, retry_after=7),
        ServerError("a.ics", "no answer"),
    ]
    report, waits, _ = run(backend)
    assert report.updated == 1 and report.exit_code == 0
    assert waits == [7, 1.0]  # Retry-After, then the doubled backoff
    assert backend.puts == 3


def test_a_retry_after_longer_than_the_cap_waits_the_cap():
    backend = backend_with("a")
    backend.before_put["a.ics"] = [ServerError("a.ics", "slow down", status=429,
                                               retry_after=3600)]
    _, waits, _ = run(backend, policy=RetryPolicy(max_wait_seconds=30))
    assert waits == [30]


def test_faults_that_do_not_stop_fail_the_object_and_the_others_are_written():
    backend = backend_with("a", "b")
    backend.before_put["a.ics"] = [ServerError("a.ics", "down", status=500)] * 10
    report, waits, _ = run(backend, policy=RetryPolicy(faults=2))
    assert [f.href for f in report.failed] == ["a.ics"]
    assert "HTTP 500" in report.failed[0].message
    assert len(waits) == 2 and backend.puts == 3 + 1
    assert prop(backend, "b.ics", "X-CLAUDE-STATUS") == "missed"  # "a" took the record
    assert (report.updated, report.unchanged, report.exit_code) == (1, 0, 1)


def test_a_refusal_is_not_retried():
    backend = backend_with("a")
    backend.before_put["a.ics"] = [ServerError("a.ics", "forbidden", status=403)]
    report, waits, _ = run(backend)
    assert waits == [] and backend.puts == 1 and len(report.failed) == 1


def test_refused_credentials_stop_the_run():
    backend = backend_with("a", "b")
    backend.before_put["a.ics"] = [AuthError("http://dav/a.ics")]
    with pytest.raises(AuthError):
        run(backend)
    assert backend.inner.writes == 0


def test_a_dry_run_writes_nothing_and_reports_the_same_plan():
    backend = backend_with("a", "b")
    report, _, written = run(backend, dry_run=True)
    assert report.dry_run and report.updated == 2
    assert all(isinstance(d, WriteObject) for d in report.written)
    assert backend.puts == 0 and backend.inner.writes == 0 and written == []
