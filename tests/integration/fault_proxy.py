"""A fault-injecting HTTP proxy on loopback, between a client and the real services; and
``botranks up`` on the test backends, for the client's integration tests.

The proxy reads each request whole, decides its fate (an explicit queue first, then a per-method
cycle) and counts what it really did:

- ``reset_before``: the connection is reset (RST) before anything reaches the server;
- ``503`` / ``429``: answered by the proxy itself (429 with ``Retry-After: 1``), not forwarded;
- ``reset_after``: forwarded, the server answers (and has committed), then the client's
  connection is reset instead of getting the answer;
- ``slow``: forwarded and answered by the server, but the answer is held until the client gives
  up (its timeout) and closes, then dropped;
- ``delay``: forwarded, answered, and the answer is held ``delay_s`` seconds before it is sent.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import cycle
from pathlib import Path
from uuid import UUID

import httpx
import psycopg

from devtools.stack import BotranksUp, delete_stream
from libs.infra.db import Database

KINDS = ("reset_before", "503", "429", "reset_after", "slow", "delay")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-encoding",
}


class FaultProxy:
    """``with FaultProxy(upstream, schedule={"POST": ["reset_after", None]}) as proxy:`` → ``proxy.url``."""

    def __init__(
        self,
        upstream: str,
        schedule: dict[str, list[str | None]] | None = None,
        *,
        delay_s: float = 1.0,
        slow_hold_s: float = 60.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay_s = delay_s
        self.slow_hold_s = slow_hold_s
        self._cycles = {method: cycle(plan) for method, plan in (schedule or {}).items() if plan}
        self._queue: list[str] = []
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()  # faults really applied, by kind
        self.requests: Counter[str] = Counter()  # requests seen, by method
        self.forwarded = 0
        self.held = threading.Event()  # set whenever a `delay` answer is being held
        self.http = httpx.Client(timeout=120)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # resets are the point, not errors
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.http.close()

    def inject(self, *kinds: str) -> None:
        """Apply these faults to the next requests (any method), before the schedule."""
        assert all(k in KINDS for k in kinds), kinds
        with self._lock:
            self._queue.extend(kinds)

    def set_schedule(self, method: str, plan: list[str | None]) -> None:
        with self._lock:
            self._cycles[method] = cycle(plan)

    def _decide(self, method: str) -> str | None:
        with self._lock:
            self.requests[method] += 1
            if self._queue:
                return self._queue.pop(0)
            plan = self._cycles.get(method)
            return next(plan) if plan is not None else None


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:
            self._proxy()

        do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

        def _proxy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fault = proxy._decide(self.command)
            if fault == "reset_before":
                return self._reset(fault)
            if fault in ("503", "429"):
                proxy.injected[fault] += 1
                headers = {"Retry-After": "1"} if fault == "429" else {}
                return self._send(int(fault), headers, b'{"detail":"injected by the fault proxy"}')
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            try:
                answer = proxy.http.request(self.command, proxy.upstream + self.path, content=body, headers=headers)
            except httpx.HTTPError:
                return self._send(502, {}, b'{"detail":"upstream unreachable"}')
            proxy.forwarded += 1
            if fault == "reset_after":
                return self._reset(fault)
            if fault == "slow":
                proxy.injected[fault] += 1
                self._hold_until_client_leaves()
                return self._reset(None)
            if fault == "delay":
                proxy.injected[fault] += 1
                proxy.held.set()
                time.sleep(proxy.delay_s)
                proxy.held.clear()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP | {"date", "server"}}
            self._send(answer.status_code, out, answer.content)

        def _send(self, status: int, headers: dict[str, str], content: bytes) -> None:
            self.send_response(status)
            headers.setdefault("Content-Type", "application/json")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _hold_until_client_leaves(self) -> None:
            deadline = time.monotonic() + proxy.slow_hold_s
            while time.monotonic() < deadline:
                ready, _, _ = select.select([self.connection], [], [], 0.1)
                if ready:
                    try:
                        if not self.connection.recv(1, socket.MSG_PEEK):
                            return  # the client closed: it gave up on this answer
                    except OSError:
                        return

        def _reset(self, kind: str | None) -> None:
            if kind is not None:
                proxy.injected[kind] += 1
            self.close_connection = True
            try:  # linger 0: close() sends RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.connection.close()

    return Handler


@contextmanager
def botranks_up(workdir: Path, database_url: str, nats_url: str, **env: str) -> Iterator[BotranksUp]:
    """``botranks up`` (gateway, both APIs, relay, projector) on the test backends; its stream is deleted after."""
    settings = {
        "BOTRANKS_DATABASE_URL": database_url,
        "BOTRANKS_NATS_URL": nats_url,
        "BOTRANKS_RATE_LIMIT_PER_MINUTE": "1000000",
        "BOTRANKS_LOG_LEVEL": "warning",
        **env,
    }
    try:
        with BotranksUp(workdir, timeout=120, **settings) as up:
            yield up
    finally:
        try:
            db = Database(database_url, pool_size=1, max_overflow=1)
            try:
                asyncio.run(delete_stream(nats_url, db.events.store_id))
            finally:
                db.close()
        except Exception:  # noqa: BLE001 - cleanup only
            pass


def stored_orders(database_url: str, strategy_id: str) -> list[str]:
    """external_order_id of every order in the event store (the truth, not a projection)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT convert_from(state, 'UTF8')::json->'order'->>'external_order_id' FROM botranks_events"
            " WHERE topic = 'OrderRecorded.v1' AND strategy_key = %s"
            " AND convert_from(state, 'UTF8')::json->'order'->>'strategy_id' = %s",
            (UUID(strategy_id).int >> 96, strategy_id),
        ).fetchall()
    return [r[0] for r in rows]
