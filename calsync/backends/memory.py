"""A dict-backed collection: the reference implementation of the `Backend` protocol.

Objects live in a dict from href (`<uid>.ics`, like a CalDAV collection) to (etag, text).
Etags are deterministic and count up (`etag-000001`, `etag-000002`, ...), as in xandikos'
`store/memory.py`, so tests can name them. `writes` counts successful puts and creates, so
a test can assert that a second sync run wrote nothing.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping

from ..errors import PreconditionFailed, ServerError
from ..model import CalendarObject


class MemoryBackend:
    """A collection held in memory; nothing is shared between instances."""

    def __init__(self, objects: Mapping[str, str] | None = None, *,
                 location: str = "memory:") -> None:
        """`objects` maps UID to VCALENDAR text: the collection's initial content."""
        self.location = location
        self.writes = 0
        self._counter = 0
        self._items: dict[str, tuple[str, str]] = {}
        for uid, text in (objects or {}).items():
            self._items[self.href_for(uid)] = (self._next_etag(), text)

    @staticmethod
    def href_for(uid: str) -> str:
        return f"{uid}.ics"

    def _next_etag(self) -> str:
        self._counter += 1
        return f"etag-{self._counter:06d}"

    def list(self) -> list[tuple[str, str | None]]:
        return [(href, etag) for href, (etag, _) in self._items.items()]

    def get(self, href: str) -> CalendarObject:
        try:
            etag, text = self._items[href]
        except KeyError:
            raise ServerError(href, "no such calendar object", status=404) from None
        return CalendarObject(href, etag, text)

    def get_many(self, hrefs: Iterable[str]) -> builtins.list[CalendarObject]:
        return [self.get(href) for href in hrefs]

    def put(self, obj: CalendarObject, *, etag: str | None) -> str:
        """Replace `obj.href` if its etag is `etag`; `etag=None` writes unconditionally."""
        current = self._items.get(obj.href)
        if etag is not None and (current is None or current[0] != etag):
            raise PreconditionFailed(obj.href)
        return self._store(obj.href, obj.text)

    def create(self, text: str, *, uid: str) -> tuple[str, str]:
        href = self.href_for(uid)
        if href in self._items:
            raise PreconditionFailed(href)
        return href, self._store(href, text)

    def _store(self, href: str, text: str) -> str:
        etag = self._next_etag()
        self._items[href] = (etag, text)
        self.writes += 1
        return etag
