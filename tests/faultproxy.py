"""A fault-injecting HTTP reverse proxy for tests, in a thread, on a free loopback port.

It forwards every request to an upstream server (Radicale or Xandikos started by the suite)
and, when a rule matches, answers with a fault instead:

    status      an HTTP status of our own (500, 503 with Retry-After, 429 ...), not forwarded
    timeout     hold the connection without answering until the client gives up
    reset       close the connection with a TCP reset before answering

A rule matches by method and by a substring of the path, and fires for its next `times`
matching requests. `before` hooks run just before a request is forwarded (e.g. to make a
concurrent edit between calsync's read and its write). Every request is counted.

    with FaultProxy("http://127.0.0.1:5232") as proxy:
        proxy.fail(status=503, retry_after=0, times=2, method="PUT")
        ... point the client at proxy.url ...
        assert proxy.count("PUT") == 3
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te",
               "trailer", "upgrade", "content-length"}

FaultKind = Literal["status", "timeout", "reset"]


@dataclass
class Rule:
    kind: FaultKind
    times: int
    method: str | None = None
    path: str | None = None
    status: int = 500
    retry_after: float | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.times > 0 and (self.method is None or self.method == method)
                and (self.path is None or self.path in path))


@dataclass
class Hook:
    action: Callable[[str, str], None]
    times: int
    method: str | None = None
    path: str | None = None


@dataclass
class Seen:
    method: str
    path: str
    status: int | None  # None: the proxy injected a timeout or a reset


@dataclass
class _State:
    rules: list[Rule] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


class FaultProxy:
    def __init__(self, upstream: str, *, hold_seconds: float = 30.0) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.hold_seconds = hold_seconds
        self.state = _State()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    # -- control ------------------------------------------------------------------------
    def fail(self, *, status: int = 500, times: int = 1, method: str | None = None,
             path: str | None = None, retry_after: float | None = None) -> None:
        self._add(Rule("status", times, method, path, status, retry_after))

    def hang(self, *, times: int = 1, method: str | None = None, path: str | None = None) -> None:
        self._add(Rule("timeout", times, method, path))

    def reset(self, *, times: int = 1, method: str | None = None, path: str | None = None) -> None:
        self._add(Rule("reset", times, method, path))

    def before(self, action: Callable[[str, str], None], *, times: int = 1,
               method: str | None = None, path: str | None = None) -> None:
        """Run `action(method, path)` before the next `times` matching requests go upstream."""
        with self.state.lock:
            self.state.hooks.append(Hook(action, times, method, path))

    def clear(self) -> None:
        with self.state.lock:
            self.state.rules.clear()
            self.state.hooks.clear()
            self.state.seen.clear()

    def count(self, method: str | None = None) -> int:
        with self.state.lock:
            return sum(1 for s in self.state.seen if method is None or s.method == method)

    @property
    def seen(self) -> list[Seen]:
        with self.state.lock:
            return list(self.state.seen)

    def _add(self, rule: Rule) -> None:
        with self.state.lock:
            self.state.rules.append(rule)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the handler --------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):
            return self._proxy
        raise AttributeError(name)

    def _take(self) -> tuple[Rule | None, list[Hook]]:
        state = self.owner.state
        with state.lock:
            rule = next((r for r in state.rules if r.matches(self.command, self.path)), None)
            if rule is not None:
                rule.times -= 1
            hooks = [h for h in state.hooks if h.times > 0
                     and (h.method is None or h.method == self.command)
                     and (h.path is None or h.path in self.path)]
            for hook in hooks:
                hook.times -= 1
        return rule, hooks

    def _record(self, status: int | None) -> None:
        with self.owner.state.lock:
            self.owner.state.seen.append(Seen(self.command, self.path, status))

    def _proxy(self) -> None:
        body = self._read_body()
        rule, hooks = self._take()
        if rule is not None:
            self._record(rule.status if rule.kind == "status" else None)
            self._inject(rule)
            return
        for hook in hooks:
            hook.action(self.command, self.path)
        status, headers, payload = self._forward(body)
        self._record(status)
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.owner.upstream_host, self.owner.upstream_port,
                                          timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body or self.command in ("PUT", "POST", "REPORT", "PROPFIND", "MKCALENDAR"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _inject(self, rule: Rule) -> None:
        if rule.kind == "status":
            payload = f"injected {rule.status}\n".encode()
            self.send_response(rule.status)
            if rule.retry_after is not None:
                self.send_header("Retry-After", str(int(rule.retry_after)))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.close_connection = True
        if rule.kind == "timeout":
            self.owner.state.stopping.wait(self.owner.hold_seconds)
            return
        # reset: SO_LINGER with a zero timeout makes close() send RST instead of FIN
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
