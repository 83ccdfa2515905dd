"""Real CalDAV servers (Radicale, Xandikos) started by the test suite, in-process.

Fixtures (this module is a pytest plugin, registered in tests/conftest.py):

radicale_server, xandikos_server
    Session-scoped `DavServer`s on free loopback ports with temporary storage.
    Radicale asks for basic auth (user `alice`, password `secret`, htpasswd plain);
    Xandikos has no auth and runs with `strict=True`.
dav_server
    Parametrized over both servers: a test using it runs once per server.
new_calendar
    The URL of a fresh, empty calendar collection on `dav_server`, unique per test.

Every test that uses one of these fixtures gets the `server` mark, so
`pytest -m "not server"` runs without starting any server.

A server is never "found already running": each one binds a port that was free when it
started and is owned by this process (the pitfall of caldav/testing.py's fixed ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

USERNAME = "alice"
PASSWORD = "secret"
HOST = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 5.0
SERVER_FIXTURES = ("radicale_server", "xandikos_server", "dav_server", "new_calendar")


@dataclass(frozen=True)
class DavServer:
    """A running CalDAV server: `url` is its root; credentials may be None (no auth)."""

    name: str
    url: str
    username: str | None
    password: str | None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].strip("/"))


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


def _wait_until_listening(port: int, thread: threading.Thread, name: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"{name} stopped while starting on port {port}")
        if _answers(port):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{name} did not answer on port {port} within {STARTUP_TIMEOUT_SECONDS}s")


# --- Radicale ----------------------------------------------------------------------------


@contextlib.contextmanager
def run_radicale(storage: Path) -> Iterator[DavServer]:
    """Radicale in a thread; stopped through a socketpair (radicale.server.serve's contract)."""
    import radicale.config
    import radicale.server

    users = storage / "users"
    users.write_text(f"{USERNAME}:{PASSWORD}\n", encoding="utf-8")
    for _attempt in range(3):
        port = free_port()
        configuration = radicale.config.load()
        configuration.update({
            "server": {"hosts": f"{HOST}:{port}"},
            "storage": {"filesystem_folder": str(storage / "collections"),
                        "_filesystem_fsync": "False"},
            "auth": {"type": "htpasswd", "htpasswd_filename": str(users),
                     "htpasswd_encryption": "plain", "delay": "0"},
            "rights": {"type": "owner_only"},
            "logging": {"level": "warning"},
        }, "test", privileged=True)
        if _answers(port):  # someone took it in the meantime: never adopt a foreign server
            continue
        stop_here, stop_there = socket.socketpair()
        thread = threading.Thread(target=radicale.server.serve, args=(configuration, stop_there),
                                  name=f"radicale-{port}", daemon=True)
        thread.start()
        try:
            _wait_until_listening(port, thread, "Radicale")
        except RuntimeError:
            stop_here.close()
            thread.join(5)
            continue
        try:
            yield DavServer("radicale", f"http://{HOST}:{port}/", USERNAME, PASSWORD)
        finally:
            stop_here.close()  # serve() sees EOF, finishes open requests, closes stop_there
            thread.join(10)
        return
    raise RuntimeError("Radicale could not bind a free port")


# --- Xandikos ----------------------------------------------------------------------------


@contextlib.contextmanager
def run_xandikos(storage: Path, middlewares: Sequence[Any] = ()) -> Iterator[DavServer]:
    """Xandikos (strict) on aiohttp in a thread, on a socket this process bound itself.

    `middlewares` are aiohttp middlewares put in front of it (to make it misbehave).
    """
    from aiohttp import web
    from xandikos.web import SingleUserFilesystemBackend, XandikosApp

    principal = f"/{USERNAME}/"
    backend = SingleUserFilesystemBackend(str(storage))
    backend.create_principal(principal, create_defaults=True)  # type: ignore[no-untyped-call]
    dav_app = XandikosApp(backend, current_user_principal=principal, strict=True)

    async def handler(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = await dav_app.aiohttp_handler(  # type: ignore[no-untyped-call]
            request, "/")
        return response

    app = web.Application(middlewares=list(middlewares))
    app.router.add_route("*", "/{path_info:.*}", handler)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    port = int(sock.getsockname()[1])
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, handle_signals=False)

    async def start() -> None:
        await runner.setup()
        await web.SockSite(runner, sock).start()

    loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, name=f"xandikos-{port}", daemon=True)
    thread.start()
    try:
        _wait_until_listening(port, thread, "Xandikos")
        yield DavServer("xandikos", f"http://{HOST}:{port}/", None, None)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        sock.close()


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def radicale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    with run_radicale(tmp_path_factory.mktemp("radicale")) as server:
        yield server


@pytest.fixture(scope="session")
def xandikos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DavServer]:
    with run_xandikos(tmp_path_factory.mktemp("xandikos")) as server:
        yield server


@pytest.fixture(scope="session", params=["radicale", "xandikos"])
def dav_server(request: pytest.FixtureRequest) -> DavServer:
    server: DavServer = request.getfixturevalue(f"{request.param}_server")
    return server


def make_calendar(server: DavServer, name: str, *, unique: bool = True) -> str:
    """Create an empty calendar collection named after `name` (made unique unless told
    otherwise; the display name is the same as the last path segment); return its URL."""
    from caldav.davclient import DAVClient

    cal_id = re.sub(r"[^A-Za-z0-9_-]+", "-", name)[:40].strip("-")
    if unique:
        cal_id += "-" + uuid.uuid4().hex[:8]
    with DAVClient(url=server.url, username=server.username, password=server.password,
                   enable_rfc6764=False, timeout=10) as client:
        calendar: Any = client.get_principal().make_calendar(name=cal_id, cal_id=cal_id)
        return str(calendar.url)


@pytest.fixture
def new_calendar(dav_server: DavServer, request: pytest.FixtureRequest) -> str:
    """URL of a fresh, empty calendar on `dav_server`; its display name is unique too."""
    return make_calendar(dav_server, request.node.name)


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    """Mark every test that needs a server, so `-m "not server"` deselects it."""
    for item in items:
        if set(getattr(item, "fixturenames", ())) & set(SERVER_FIXTURES):
            item.add_marker(pytest.mark.server)
