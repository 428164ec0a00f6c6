"""One webhook delivery over HTTP(S): a POST of the event's JSON, signed (``signing``), to the
address the guard checked (``guard.destination``: the host is resolved once, here, and the socket
connects to that address; TLS still verifies the certificate against the URL's host name). No
redirect is followed (a 3xx is a failed attempt), the whole attempt has one deadline (``timeout_s``,
the socket is shut when it passes, however slowly the receiver trickles bytes), and at most
``RESPONSE_BYTES`` of the answer are read and kept."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass

from . import signing
from .guard import Refused, Resolver, destination, system_resolver

RESPONSE_BYTES = 500
TIMEOUT_S = 5.0
USER_AGENT = "BotRanks-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status: int | None
    ms: int
    response: str | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection to a checked address; ``Host`` names the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedTLS(_Pinned):
    """The same over TLS: the certificate is verified against the URL's host name (SNI too)."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, address, timeout)
        self.context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


_DEFAULT_TLS = ssl.create_default_context()


def deliver(
    url: str,
    secret: str,
    body: bytes,
    *,
    kind: str,
    delivery_id: uuid.UUID,
    resolver: Resolver = system_resolver,
    allow_private: bool = False,
    timeout_s: float = TIMEOUT_S,
    tls_context: ssl.SSLContext | None = None,
) -> Outcome:
    """POST ``body`` to ``url``; never raises (a refusal or a network error is the outcome's ``error``).
    ``tls_context``: the trust store of https URLs (the system's by default)."""
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        dest = destination(url, resolver, allow_private)
    except Refused as exc:
        return Outcome(None, elapsed(), None, f"refused: {exc}")
    conn: _Pinned
    if dest.scheme == "https":
        conn = _PinnedTLS(dest.host, dest.port, dest.address, timeout_s, tls_context or _DEFAULT_TLS)
    else:
        conn = _Pinned(dest.host, dest.port, dest.address, timeout_s)
    deadline = threading.Timer(timeout_s, _shut, (conn,))
    deadline.daemon = True
    deadline.start()
    try:
        conn.request(
            "POST",
            dest.target,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                signing.HEADER: signing.header(secret, body),
                "BotRanks-Event": kind,
                "BotRanks-Delivery": str(delivery_id),
            },
        )
        answer = conn.getresponse()
        text = answer.read(RESPONSE_BYTES).decode("utf-8", "replace")
        return Outcome(answer.status, elapsed(), text, None)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        late = time.monotonic() - started >= timeout_s
        why = (
            f"timed out after {timeout_s:g} s"
            if late or isinstance(exc, TimeoutError)
            else f"{type(exc).__name__}: {exc}"
        )
        return Outcome(None, elapsed(), None, why[:RESPONSE_BYTES])
    finally:
        deadline.cancel()
        conn.close()


def _shut(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
