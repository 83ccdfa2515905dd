"""The memory backend passes the contract, and counts its writes with readable etags."""

from __future__ import annotations

import pytest

from calsync.backends import Backend
from calsync.backends.memory import MemoryBackend
from calsync.errors import PreconditionFailed
from calsync.model import CalendarObject
from tests.backends.contract import BackendContract, single_event


class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def backend(self) -> MemoryBackend:
        return MemoryBackend()


def test_is_a_backend() -> None:
    assert isinstance(MemoryBackend(), Backend)


def test_etags_count_up_and_writes_are_counted() -> None:
    backend = MemoryBackend({"seeded@calsync.test": single_event("seeded@calsync.test")})
    assert backend.list() == [("seeded@calsync.test.ics", "etag-000001")]
    assert backend.writes == 0
    href, etag = backend.create(single_event("new@calsync.test"), uid="new@calsync.test")
    assert (href, etag) == ("new@calsync.test.ics", "etag-000002")
    assert backend.put(CalendarObject(href, etag, single_event("new@calsync.test", "Edited")),
                       etag=etag) == "etag-000003"
    assert backend.writes == 2


def test_a_failed_write_is_not_counted() -> None:
    backend = MemoryBackend({"seeded@calsync.test": single_event("seeded@calsync.test")})
    with pytest.raises(PreconditionFailed):
        backend.create(single_event("seeded@calsync.test"), uid="seeded@calsync.test")
    assert backend.writes == 0
