"""Where calendar objects live: one small protocol, speaking in hrefs and etags.

Glossary:

href
    Where a calendar object lives: a URL path on a CalDAV server; for an .ics file, the
    object's UID (a file holds many objects, one per UID: a master and its overrides).
etag
    An opaque version of one calendar object. It changes whenever the object changes.
    After a DAV PUT a server may answer with no etag: `put`/`create` then return None, and
    the caller reads the object again before writing it once more (or re-plans next run).
calendar object
    `model.CalendarObject(href, etag, text)`: one VCALENDAR text holding one UID.

Every write is conditional. `put(obj, etag=...)` replaces the object only if its current
etag is still `etag` (HTTP If-Match); `create(text)` only if nothing is there yet
(If-None-Match: *). Either raises `errors.PreconditionFailed` when someone else won.
Read-only mode is enforced once, in the engine, not in each backend.

`open_backend(location, ...)` picks the backend by the location's shape and imports it
lazily, so that commands that never touch a server never import caldav.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..model import CalendarObject

if TYPE_CHECKING:
    from ..config import Settings


@runtime_checkable
class Backend(Protocol):
    """A collection of calendar objects."""

    location: str

    def list(self) -> Iterable[tuple[str, str | None]]:
        """Every (href, etag) in the collection."""
        ...

    def get(self, href: str) -> CalendarObject:
        """One object; raises `errors.ServerError` (status 404) when it is gone."""
        ...

    def get_many(self, hrefs: Iterable[str]) -> Iterable[CalendarObject]:
        """Several objects; backends that can fetch in one request override the loop."""
        ...

    def put(self, obj: CalendarObject, *, etag: str | None) -> str | None:
        """Replace `obj.href` if its etag is still `etag`; return the new etag (or None)."""
        ...

    def create(self, text: str, *, uid: str) -> tuple[str, str | None]:
        """Store a new object; return (href, etag). Fails if one with that href exists."""
        ...


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def open_backend(location: str, *, settings: Settings, env: Mapping[str, str]) -> Backend:
    """The backend for `location`: an http(s) URL is a CalDAV collection, anything else an
    .ics file. Each backend module is imported here, only when it is needed.

    For a URL, credentials and connection options come from `settings.calendar`; its
    `calendar_name` applies only when `location` is the configured `calendar.url` (a
    URL given on the command line names the collection itself). The password is looked
    up (see `calsync.secrets`) only when a username is configured.
    """
    if is_url(location):
        from ..secrets import get_password
        from .caldav import CaldavBackend

        options = settings.calendar
        return CaldavBackend(
            location, username=options.username,
            password=get_password(settings, env) if options.username else None,
            auth=options.auth, verify_tls=options.verify_tls,
            timeout_seconds=options.timeout_seconds,
            calendar_name=options.calendar_name if location == options.url else None,
        )
    from .icsfile import IcsFileBackend

    return IcsFileBackend(location)
