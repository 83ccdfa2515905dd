"""One local .ics file holding many events: the embedded default calendar.

This is the file a person exports from a calendar app, or imports into one. Its calendar
objects are its components grouped by UID (a master and its overrides are one object):

- href = the UID; etag = a hash of that object's components as they are stored;
- `get` returns a VCALENDAR of its own (the file's calendar properties, the VTIMEZONEs the
  object uses, its components), so callers can parse it alone;
- `put`/`create` rewrite the file, changing only that UID's components: every other byte
  stays as it was (see `calsync.icsblocks`). VTIMEZONEs the object needs and the file lacks
  are copied in from the text written. Writes are conditional on the etag, like a server's.

Safety: every write holds an exclusive lock on a hidden sibling file `.<name>.lock`
(`fcntl.flock` on POSIX, `msvcrt.locking` on Windows) while it re-reads the file, compares
the etag and writes; it waits up to `lock_timeout_seconds`, then raises `LockedError`. The
new content goes to a temporary file in the same directory, is fsynced, gets the old file's
permissions and replaces it with `os.replace`: a crash leaves the old file or the new one.
A symlinked path is followed: the file it points to is replaced.

A missing or empty file is an empty calendar; `create` makes it (and its directory).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import CalendarParseError, LockedError, PreconditionFailed, ServerError
from ..files import try_lock, unlock, write_atomic
from ..icsblocks import (
    Block,
    IcsDocument,
    IcsSyntaxError,
    new_calendar,
    object_text,
    parse_document,
    splice,
    standalone,
)
from ..model import CalendarObject


class IcsFileBackend:
    """The calendar objects of one .ics file, by UID."""

    def __init__(self, path: Path | str, *, lock_timeout_seconds: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self.lock_timeout_seconds = lock_timeout_seconds

    # --- reading ----------------------------------------------------------------------------

    def read_calendar_text(self) -> str:
        """The whole file as text ("" when it does not exist)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return ""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise CalendarParseError(f"line {line}: not UTF-8 text", path=str(self.path)) from None

    def read_all(self) -> builtins.list[CalendarObject]:
        """Every calendar object, from one read and one parse of the file."""
        doc = self._document(self.read_calendar_text())
        if doc is None:
            return []
        texts = standalone(doc)
        return [CalendarObject(uid, _etag(blocks), texts[uid])
                for uid, blocks in doc.objects().items()]

    def list(self) -> builtins.list[tuple[str, str | None]]:
        doc = self._document(self.read_calendar_text())
        if doc is None:
            return []
        return [(uid, _etag(blocks)) for uid, blocks in doc.objects().items()]

    def get(self, href: str) -> CalendarObject:
        return next(iter(self.get_many([href])))

    def get_many(self, hrefs: Iterable[str]) -> builtins.list[CalendarObject]:
        hrefs = builtins.list(hrefs)
        doc = self._document(self.read_calendar_text())
        objects = doc.objects() if doc is not None else {}
        for href in hrefs:
            if href not in objects:
                raise ServerError(href, f"no event with this UID in {self.path}", status=404)
        texts = standalone(doc, hrefs) if doc is not None else {}
        return [CalendarObject(href, _etag(objects[href]), texts[href]) for href in hrefs]

    def _document(self, text: str) -> IcsDocument | None:
        if not text.strip("\ufeff \t\r\n"):
            return None
        try:
            return parse_document(text)
        except IcsSyntaxError as exc:
            raise CalendarParseError(str(exc), path=str(self.path)) from None

    # --- writing ----------------------------------------------------------------------------

    def put(self, obj: CalendarObject, *, etag: str | None) -> str:
        """Replace the components of UID `obj.href` if their etag is still `etag`.

        `etag=None` writes unconditionally (and adds the object if it is missing).
        """
        with self._locked():
            doc = self._document(self.read_calendar_text())
            current = doc.objects().get(obj.href) if doc is not None else None
            if etag is not None and (current is None or _etag(current) != etag):
                raise PreconditionFailed(obj.href)
            return self._write(doc, obj.href, obj.text)

    def create(self, text: str, *, uid: str) -> tuple[str, str]:
        """Add a new object; PreconditionFailed if the file already holds `uid`."""
        with self._locked():
            doc = self._document(self.read_calendar_text())
            if doc is not None and uid in doc.objects():
                raise PreconditionFailed(uid)
            return uid, self._write(doc, uid, text)

    def _write(self, doc: IcsDocument | None, uid: str, text: str) -> str:
        try:
            new_text = splice(doc if doc is not None else new_calendar(), uid, text)
        except IcsSyntaxError as exc:
            raise CalendarParseError(str(exc), uid=uid) from None
        write_atomic(self._target(), new_text.encode("utf-8"))
        return _etag(parse_document(new_text).objects()[uid])

    def _target(self) -> Path:
        return Path(os.path.realpath(self.path))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        target = self._target()
        target.parent.mkdir(parents=True, exist_ok=True)
        lock_path = target.with_name(f".{target.name}.lock")
        with open(lock_path, "a+b") as handle:
            deadline = time.monotonic() + self.lock_timeout_seconds
            while not try_lock(handle.fileno()):
                if time.monotonic() >= deadline:
                    raise LockedError(str(lock_path))
                time.sleep(0.05)
            try:
                yield
            finally:
                unlock(handle.fileno())


def _etag(blocks: Iterable[Block]) -> str:
    return hashlib.sha256(object_text(blocks).encode("utf-8")).hexdigest()[:32]


