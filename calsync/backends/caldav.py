"""A CalDAV calendar collection as a `Backend`: the only module that imports caldav.

Every operation is one HTTP request where the protocol allows it (plus one 401 round trip
the first time, when the auth scheme is negotiated):

list()            PROPFIND Depth 1 for DAV:getetag
get(href)         GET
get_many(hrefs)   one calendar-multiget REPORT
put(obj, etag)    PUT with If-Match (no header with etag=None, as the memory backend)
create(text, uid) PUT with If-None-Match: * to `<collection>/<uid>.ics`
sync_changes(tok) one RFC 6578 sync-collection REPORT (more only if the server truncates)
sync_objects(tok) the same REPORT with the changed objects' calendar-data

The text is stored exactly as given: no METHOD, ORGANIZER, ATTENDEE or SEQUENCE is added,
and no PUT is retried with "cleaned" data (caldav's `save()` does both; we only use its
client and its response parser). A PUT answered without an ETag is followed by a
PROPFIND of that one href, so callers always get the etag the server now holds.

Hrefs are URL paths as the server reports them, percent-decoded (caldav's normal form),
e.g. `/alice/work/a@b.ics`. `requests` counts HTTP requests sent.

Errors from caldav and the HTTP library are translated here and never leak:
401 and a plain 403 → AuthError; 412 → PreconditionFailed; a 403/409 naming a CalDAV
precondition (e.g. no-uid-conflict) → ServerError; 404 → ServerError(status=404);
429/5xx, timeouts, refused or reset connections → ServerError (`transient`), with
`retry_after` from a Retry-After header. A sync token the server refuses → SyncTokenInvalid.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, NoReturn, TypeVar
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from caldav.lib.http_sync import requests as http

from ..errors import (
    AuthError,
    ConfigError,
    PreconditionFailed,
    ServerError,
    SyncTokenInvalid,
)
from ..model import CalendarObject

T = TypeVar("T")
AuthScheme = Literal["auto", "basic", "digest"]

_SAFE_PATH = "/@:+,;=!$&'()*~"
_SAFE_NAME = re.compile(r"[^/\\%?#\s\x00-\x1f\x7f]+")
_VALID_SYNC_TOKEN = "{DAV:}valid-sync-token"
_MAX_SYNC_PAGES = 100
_XML = '<?xml version="1.0" encoding="utf-8"?>\n'
_PROPFIND_ETAGS = (
    _XML + '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:resourcetype/></D:prop>'
    "</D:propfind>"
)
_PROPFIND_NAMES = (
    _XML + '<D:propfind xmlns:D="DAV:"><D:prop><D:displayname/><D:resourcetype/></D:prop>'
    "</D:propfind>"
)
_MULTIGET = (
    _XML + '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><D:getetag/><C:calendar-data/></D:prop>{hrefs}</C:calendar-multiget>"
)
# RFC 6578: no DAV:limit, ever (servers may refuse it, and truncation is handled below)
_SYNC_COLLECTION = (
    _XML + '<D:sync-collection xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
    "<D:prop><D:getetag/>{data}</D:prop></D:sync-collection>"
)
_ICAL = {"Content-Type": "text/calendar; charset=utf-8"}
MULTIGET_BATCH = 200


def name_for_uid(uid: str) -> str:
    """The last path segment of a new object: `<uid>.ics`, or a stable hash of an odd UID.

    A UID holding '/', '%', '?', '#', '\\', whitespace or control characters (or starting
    with '.') would turn into a different path on some servers, so it is replaced by a
    UUID derived from it: the same UID always gets the same name.
    """
    if _SAFE_NAME.fullmatch(uid) and not uid.startswith("."):
        return f"{uid}.ics"
    return f"{uuid.uuid5(uuid.NAMESPACE_URL, 'calsync:' + uid).hex}.ics"


class CaldavBackend:
    """One calendar collection on a CalDAV server.

    `url` is the collection's URL; or, with `calendar_name`, any URL on the server (its
    root will do): the collection is then the user's calendar with that display name,
    found on first use.
    """

    def __init__(
        self, url: str, *, username: str | None = None, password: str | None = None,
        auth: AuthScheme = "auto", verify_tls: bool = True, timeout_seconds: float = 30.0,
        calendar_name: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"not an http(s) URL: {url!r}", key="calendar.url")
        if parts.username or parts.password:
            raise ConfigError("credentials do not belong in the URL", key="calendar.url",
                              hint="set calendar.username and keep the password in the "
                              "keyring, password_command or CALSYNC_PASSWORD")
        self.requests = 0
        self.timeout_seconds = timeout_seconds
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._calendar_name = calendar_name
        self._path: str | None = None if calendar_name else _collection_path(parts.path)
        # the collection's URL; until a display name is looked up, where it will be looked for
        self.location = (f"{url} (calendar {calendar_name!r})" if self._path is None
                         else self._url(self._path))
        self._client = DAVClient(
            url=url, username=username, password=password,
            auth_type=None if auth == "auto" else auth,
            timeout=timeout_seconds,  # type: ignore[arg-type]  # niquests takes a float
            ssl_verify_cert=verify_tls, enable_rfc6764=False, rate_limit_handle=False,
        )
        hooks: Any = self._client.session.hooks  # every HTTP request, 401 round trips too
        hooks["response"].append(self._count)

    def _count(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return response

    # --- where the collection is -----------------------------------------------------------

    @property
    def path(self) -> str:
        """The collection's href, ending in '/'."""
        if self._path is None:
            self._path = self._find_by_name(str(self._calendar_name))
            self.location = self._url(self._path)
        return self._path

    def _find_by_name(self, name: str) -> str:
        home = self._call(self._origin + "/",
                          lambda: self._client.get_principal().calendar_home_set)
        home_path = _collection_path(unquote(urlsplit(str(home.url)).path))
        response = self._send("PROPFIND", home_path, _PROPFIND_NAMES, {"Depth": "1"})
        found = {}
        for result in response.parse_propfind():
            kinds = result.properties.get("{DAV:}resourcetype") or []
            if any(kind.endswith("}calendar") for kind in kinds):
                found[str(result.properties.get("{DAV:}displayname") or "")] = result.href
        for display_name, href in found.items():
            if display_name.casefold() == name.casefold():
                return _collection_path(href)
        raise ConfigError(
            f"no calendar named {name!r} on {self._origin}", key="calendar.calendar_name",
            hint="calendars there: " + (", ".join(sorted(n for n in found if n)) or "none"),
        )

    def _url(self, href: str) -> str:
        if href.startswith(("http://", "https://")):
            return href
        return self._origin + quote(href, safe=_SAFE_PATH)

    # --- the Backend protocol --------------------------------------------------------------

    def list(self) -> builtins.list[tuple[str, str | None]]:
        """Every (href, etag) in the collection, from one PROPFIND."""
        response = self._send("PROPFIND", self.path, _PROPFIND_ETAGS, {"Depth": "1"})
        self._check(response, self.path)
        return [
            (r.href, r.properties.get("{DAV:}getetag"))
            for r in response.parse_propfind()
            if r.status == 200 and not _is_collection(r.properties)
            and _collection_path(r.href) != self.path
        ]

    def get(self, href: str) -> CalendarObject:
        response = self._send("GET", href, "", {"Accept": "text/calendar"})
        self._check(response, href)
        return CalendarObject(href, response.headers.get("ETag"), response.raw)

    def get_many(self, hrefs: Iterable[str]) -> builtins.list[CalendarObject]:
        """The objects that still exist, in the order asked for, from multiget REPORTs.

        One REPORT per `MULTIGET_BATCH` objects: servers cap what one answer may hold
        (Radicale refuses a REPORT past 10,000 VEVENTs, and every override counts). An href
        that is gone (deleted since it was listed) is left out.
        """
        wanted = builtins.list(dict.fromkeys(hrefs))
        found: dict[str, Any] = {}
        for first in range(0, len(wanted), MULTIGET_BATCH):
            batch = wanted[first:first + MULTIGET_BATCH]
            body = _MULTIGET.format(hrefs="".join(
                f"<D:href>{escape(quote(h, safe=_SAFE_PATH))}</D:href>" for h in batch))
            response = self._send("REPORT", self.path, body, {})  # RFC 4791 7.9: no Depth
            self._check(response, self.path)
            found.update((r.href, r) for r in response.parse_calendar_query()
                         if r.status == 200 and r.calendar_data)
        return [CalendarObject(h, found[h].etag, str(found[h].calendar_data))
                for h in wanted if h in found]

    def put(self, obj: CalendarObject, *, etag: str | None) -> str | None:
        """Replace `obj.href` if its etag is still `etag` (If-Match); the new etag."""
        headers = dict(_ICAL) | ({"If-Match": etag} if etag is not None else {})
        response = self._send("PUT", obj.href, obj.text, headers)
        self._check(response, obj.href)
        return self._etag_after_put(response, obj.href)

    def create(self, text: str, *, uid: str) -> tuple[str, str | None]:
        """Store a new object at `<collection>/<uid>.ics` unless something is there."""
        href = self.path + name_for_uid(uid)
        response = self._send("PUT", href, text, dict(_ICAL) | {"If-None-Match": "*"})
        self._check(response, href)
        location = response.headers.get("Location")
        if location:
            href = unquote(urlsplit(location).path)
        return href, self._etag_after_put(response, href)

    # --- incremental sync (RFC 6578) -------------------------------------------------------

    def sync_changes(
        self, token: str | None,
    ) -> tuple[builtins.list[tuple[str, str | None]], builtins.list[str], str]:
        """(changed (href, etag) pairs, deleted hrefs, new token) since `token`.

        `token=None` lists everything and returns the first token. Raises
        `errors.SyncTokenInvalid` when the server refuses the token or has no
        sync-collection: the caller then falls back to `list()`.
        """
        changed, deleted, current = self._sync_collection(token, with_data=False)
        return [(o.href, o.etag) for o in changed], deleted, current

    def sync_objects(
        self, token: str | None,
    ) -> tuple[builtins.list[CalendarObject], builtins.list[str], str]:
        """As `sync_changes`, with the changed objects' texts in the same REPORT.

        A first sync then costs one request, like a calendar-query, instead of a listing
        and a multiget. An object whose text the server left out has `text == ""`. A
        server that will not send that much at once answers 400: `ServerError(status=400)`.
        """
        return self._sync_collection(token, with_data=True)

    def _sync_collection(
        self, token: str | None, *, with_data: bool,
    ) -> tuple[builtins.list[CalendarObject], builtins.list[str], str]:
        changed: dict[str, CalendarObject] = {}
        deleted: dict[str, None] = {}
        current = token or ""
        data = "<C:calendar-data/>" if with_data else ""
        for _page in range(_MAX_SYNC_PAGES):
            body = _SYNC_COLLECTION.format(token=escape(current), data=data)
            response = self._send("REPORT", self.path, body, {})
            if with_data and response.status == 400:  # Radicale: past max_expand_occurrence
                raise ServerError(self.path, "the server refused to send this many objects "
                                  "in one REPORT", status=400)
            if response.status in (400, 403, 405, 409, 412, 415, 501):
                raise SyncTokenInvalid(self.path, f"the server refused sync-collection "
                                       f"(HTTP {response.status})")
            self._check(response, self.path)
            result = response.parse_sync_collection()
            for item in result.changed:
                if _collection_path(item.href) != self.path:
                    text = str(item.calendar_data) if item.calendar_data else ""
                    changed[item.href] = CalendarObject(item.href, item.etag, text)
                    deleted.pop(item.href, None)
            for href in result.deleted:
                deleted[href] = None
                changed.pop(href, None)
            if not result.sync_token:
                raise SyncTokenInvalid(self.path, "the server sent no sync token")
            current = result.sync_token
            if not result.truncated:
                return builtins.list(changed.values()), builtins.list(deleted), current
        raise ServerError(self.path, f"sync-collection still truncated after "
                          f"{_MAX_SYNC_PAGES} pages")

    # --- HTTP, and the translation of every failure ----------------------------------------

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CaldavBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _etag_after_put(self, response: Any, href: str) -> str | None:
        etag = response.headers.get("ETag")
        if etag:
            return str(etag)
        read = self._send("PROPFIND", href, _PROPFIND_ETAGS, {"Depth": "0"})
        self._check(read, href)
        return next((r.properties.get("{DAV:}getetag") for r in read.parse_propfind()), None)

    def _send(self, method: str, href: str, body: str, headers: dict[str, str]) -> Any:
        return self._call(href, lambda: self._client.request(self._url(href), method, body,
                                                             headers))

    def _call(self, href: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except dav_error.RateLimitError as exc:
            raise ServerError(href, "the server asks to slow down", status=exc.status,
                              retry_after=exc.retry_after_seconds) from None
        except dav_error.AuthorizationError as exc:
            _raise_refused(href, self._url(href), exc)
        except http.exceptions.Timeout:
            raise ServerError(href, f"no answer from {self._origin} within "
                              f"{self.timeout_seconds:g} s") from None
        except http.exceptions.SSLError as exc:
            raise ServerError(href, f"TLS with {self._origin} failed: {_first_line(exc)}",
                              ) from None
        except (http.exceptions.RequestException, OSError) as exc:
            raise ServerError(href, f"cannot reach {self._origin}: {_first_line(exc)}",
                              ) from None
        except dav_error.DAVError as exc:
            raise ServerError(href, exc.reason, status=exc.status) from None

    @staticmethod
    def _check(response: Any, href: str) -> None:
        status = int(response.status)
        if status < 400:
            return
        if status == 412:
            raise PreconditionFailed(href)
        if status == 404:
            raise ServerError(href, "no such calendar object or collection", status=404)
        retry = response.headers.get("Retry-After")
        raise ServerError(href, response.reason or "request failed", status=status,
                          retry_after=dav_error.parse_retry_after(retry) if retry else None)


def _raise_refused(href: str, url: str, exc: dav_error.AuthorizationError) -> NoReturn:
    if _VALID_SYNC_TOKEN in exc.preconditions:
        raise SyncTokenInvalid(href, "the server no longer knows this sync token") from None
    if exc.status == 403 and exc.preconditions:
        names = ", ".join(p.rsplit("}", 1)[-1] for p in exc.preconditions)
        raise ServerError(href, f"the server refused the write ({names})",
                          status=403) from None
    raise AuthError(url) from None


def _collection_path(path: str) -> str:
    return (path or "/").rstrip("/") + "/"


def _is_collection(properties: dict[str, Any]) -> bool:
    kinds: Iterator[str] = iter(properties.get("{DAV:}resourcetype") or [])
    return any(kind == "{DAV:}collection" for kind in kinds)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
