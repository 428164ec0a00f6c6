"""The single base URL of ``botranks up``: an ASGI reverse proxy in front of the two APIs.

Reads of the ledger (GET/HEAD under ``/api/v1``) and the subscribers' pages (GET/HEAD of ``/``,
``/s/*``, ``/p/*``, ``/static/*``, ``/docs``) go to query_api, everything else (ledger writes,
accounts and the owners' pages under ``/account``, strategies, API keys) to command_api;
``/schema/openapi.json`` is the union of both schemas. ``/healthz`` answers 200
``{"status": "ok"}`` only when every supervised process and embedded server runs, both APIs
answer their ``/healthz`` and query_api's ``/readyz`` is 200 (a 404 there means "no readiness
check" and counts as ready); otherwise 503 ``{"detail": "...", "down": [names]}``.
``/readyz`` is query_api's, passed through. ``deploy/`` ships a real reverse proxy
configuration for production; this exists so that one command runs everything.

Everything else is proxied faithfully and statelessly (see "Gateway" in docs/NOTES.md): no
cookie jar, repeated headers kept in both directions, hop-by-hop headers dropped, bodies
streamed both ways with the 1 MiB request limit enforced while streaming, a client's malformed
request answered 400 and only an unreachable upstream 503.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
from typing import Any, AsyncIterator, Callable

import httpx

from libs.infra.metrics import CONTENT_TYPE_LATEST, merge_expositions

MAX_BODY = 1024 * 1024  # the APIs' own limit (Litestar's default request_max_body_size), enforced here first
TOO_LARGE = b'{"detail":"Request body over 1 MiB"}'
UNAVAILABLE = b'{"detail":"Service unavailable, retry with backoff"}'
READYZ_TIMEOUT_S = 5.0  # query_api gives its database 3 s before answering 503 itself

# RFC 9110 7.6.1: meaningful for one connection only, never forwarded (plus any header the
# Connection header names). ``expect`` too: uvicorn answers 100-continue to the client itself.
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                        b"transfer-encoding", b"upgrade", b"expect"})
# set by the gateway for the upstream, never taken from the client; and ``Proxy`` ("httpoxy":
# no legitimate use, some stacks read it as HTTP_PROXY). ``Proxy-*`` headers are dropped too.
REQUEST_DROP = HOP_BY_HOP | {b"host", b"content-length", b"x-forwarded-host", b"x-forwarded-proto", b"proxy"}
# uvicorn adds its own ``date`` and ``server`` to every response of the gateway: the upstream's
# copies would make two of each (the supervisor, not this module, configures that uvicorn)
RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server"}
OWS = b" \t"
# the subscribers' pages, their JSON and assets, and the API reference: query_api's (GET/HEAD);
# the owners' pages (/account...) are command_api's like everything else
PAGE_PATHS = frozenset({"/", "/docs"})
PAGE_PREFIXES = ("/s/", "/p/", "/static/")


def is_page(path: str) -> bool:
    return path in PAGE_PATHS or path.startswith(PAGE_PREFIXES)


class NoCookieJar(http.cookiejar.CookieJar):
    """A cookie jar that never holds a cookie.

    httpx clients keep cookies: every ``Set-Cookie`` of a response is stored in the client and
    sent with every later request that has none of its own. In a proxy shared by everybody
    that hands one person's session to the next anonymous caller. Every way into a
    ``CookieJar`` (``extract_cookies``, ``set_cookie_if_ok``, ``Cookies.set``) ends in
    ``set_cookie``, so refusing there keeps the jar empty whatever httpx does with it; and
    ``add_cookie_header`` never adds one. Forwarded requests are also built as plain
    ``httpx.Request`` objects (not ``client.build_request``), so no client-level cookie or
    default header is merged into them: only what the client sent goes upstream.
    """

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def add_cookie_header(self, request) -> None:
        return None


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


class BadRequest(Exception):
    pass


def new_client() -> httpx.AsyncClient:
    # trust_env=False: no HTTP(S)_PROXY / NO_PROXY / SSL_* from the environment between us and
    # the services. keepalive_expiry below uvicorn's 5 s keep-alive timeout, so an idle
    # connection is dropped by us before the upstream closes it under a request.
    return httpx.AsyncClient(timeout=60.0, cookies=NoCookieJar(), trust_env=False, follow_redirects=False,
                             limits=httpx.Limits(max_connections=200, keepalive_expiry=3.0))


class Gateway:
    def __init__(self, command_url: str, query_url: str, down: Callable[[], list[str]],
                 workers: dict[str, str] | None = None) -> None:
        """``down()`` names the supervised processes and embedded servers not running right now;
        ``workers``: the health servers (``/healthz``, ``/readyz``, ``/metrics``) of the services without
        an HTTP API, by name."""
        self.command_url, self.query_url = command_url, query_url
        self.down = down
        self.services = {"command_api": command_url, "query_api": query_url, **(workers or {})}
        self.client = new_client()

    def upstream(self, method: str, path: str) -> str:
        if method in ("GET", "HEAD") and (path.startswith("/api/v1/") or is_page(path)):
            return self.query_url
        return self.command_url

    async def merged_schema(self) -> bytes:
        command, query = [(await self.client.get(base + "/schema/openapi.json")).json()
                          for base in (self.command_url, self.query_url)]
        for path, operations in query.get("paths", {}).items():
            command.setdefault("paths", {}).setdefault(path, {}).update(operations)
        for name, schema in query.get("components", {}).get("schemas", {}).items():
            command.setdefault("components", {}).setdefault("schemas", {}).setdefault(name, schema)
        command["info"] = {"title": "BotRanks API", "version": "1.0.0"}
        return json.dumps(command).encode()

    async def _answers(self, url: str, ok: tuple[int, ...] = (200,), timeout: float = 2.0) -> bool:
        try:
            return (await self.client.get(url, timeout=timeout)).status_code in ok
        except httpx.HTTPError:
            return False

    async def health(self) -> tuple[int, bytes]:
        down = list(self.down())
        checks = {name: url for name, url in (("command_api", self.command_url + "/healthz"),
                                              ("query_api", self.query_url + "/healthz"))
                  if name not in down}
        if "query_api" not in down:
            # query_api's database answers (404: a query_api without /readyz, nothing to check)
            checks["query_api/readyz"] = self.query_url + "/readyz"
        results = await asyncio.gather(*(self._answers(url, (200, 404), READYZ_TIMEOUT_S) if name.endswith("readyz")
                                         else self._answers(url) for name, url in checks.items()))
        down += [name for name, ok in zip(checks, results) if not ok and name not in down]
        if not down:
            return 200, b'{"status":"ok"}'
        detail = "Starting or degraded: " + ", ".join(down) + " not up"
        return 503, json.dumps({"detail": detail, "down": down}).encode()

    async def readiness(self) -> tuple[int, bytes]:
        """Every service's ``/readyz``: 200 when all are ready (a 404: a service without readiness, nothing
        to check), else 503 naming those that are not."""
        async def one(name: str, base: str) -> tuple[str, int, Any]:
            try:
                answer = await self.client.get(base + "/readyz", timeout=READYZ_TIMEOUT_S)
                return name, answer.status_code, answer.json()
            except (httpx.HTTPError, ValueError) as exc:
                return name, 503, {"detail": f"not answering: {type(exc).__name__}"}

        results = await asyncio.gather(*(one(name, base) for name, base in self.services.items()))
        down = [name for name, status, _ in results if status not in (200, 404)]
        body: dict[str, Any] = {"status": "ok" if not down else "unavailable",
                                "services": {name: answer for name, _, answer in results}}
        if down:
            body = {"detail": "Not ready: " + ", ".join(down), "down": down, **body}
        return (503 if down else 200), json.dumps(body, default=str).encode()

    async def metrics(self) -> tuple[int, bytes]:
        """Every service's ``/metrics`` in one exposition, each sample labelled with its ``service``."""
        async def one(name: str, base: str) -> tuple[str, str | None]:
            try:
                answer = await self.client.get(base + "/metrics", timeout=READYZ_TIMEOUT_S)
                return name, answer.text if answer.status_code == 200 else None
            except httpx.HTTPError:
                return name, None

        results = await asyncio.gather(*(one(name, base) for name, base in self.services.items()))
        texts = {name: text for name, text in results if text is not None}
        return 200, await asyncio.to_thread(merge_expositions, texts)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/healthz":
            status, body = await self.health()
            await _respond(send, status, body)
            return
        if path == "/readyz" and scope["method"] == "GET":
            status, body = await self.readiness()
            await _respond(send, status, body)
            return
        if path == "/metrics" and scope["method"] == "GET":
            status, body = await self.metrics()
            await _respond(send, status, body, CONTENT_TYPE_LATEST)
            return
        if path == "/schema/openapi.json" and scope["method"] == "GET":
            try:
                await _respond(send, 200, await self.merged_schema())
            except httpx.HTTPError:
                await _respond(send, 503, UNAVAILABLE)
            return
        await self.proxy(scope, receive, send)

    # ------------------------------------------------------------------ proxying

    def build(self, scope, receive) -> httpx.Request:
        """The upstream request for what the client sent; BadRequest/ValueError if it cannot be."""
        raw = [(name.lower(), value.strip(OWS)) for name, value in scope["headers"]]
        connection_named = {token.strip().lower().encode("latin-1")
                            for name, value in raw if name == b"connection"
                            for token in value.decode("latin-1").split(",") if token.strip()}
        lengths = {value for name, value in raw if name == b"content-length"}
        codings = [value for name, value in raw if name == b"transfer-encoding"]
        if len(lengths) > 1 or any(not v.isdigit() for v in lengths):
            raise BadRequest("Invalid Content-Length")
        length = int(lengths.pop()) if lengths else None
        if length is not None and length > MAX_BODY:
            raise BodyTooLarge  # refused before reading a byte of it
        if codings and b",".join(codings).replace(b" ", b"").lower() != b"chunked":
            raise BadRequest("Unsupported Transfer-Encoding")

        headers = [(name, value) for name, value in raw
                   if name not in REQUEST_DROP and name not in connection_named and not name.startswith(b"proxy-")]
        host = next((value for name, value in raw if name == b"host"), None)
        if host:
            headers.append((b"x-forwarded-host", host))
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        client = scope.get("client")
        chain = [value for name, value in headers if name == b"x-forwarded-for"]
        headers = [(name, value) for name, value in headers if name != b"x-forwarded-for"]
        if client:
            peer = client[0].encode()
            # uvicorn (proxy_headers, trusting 127.0.0.1) may already have taken ``client`` from
            # the last untrusted hop of an incoming chain: do not list it twice
            if not chain or chain[-1].rsplit(b",", 1)[-1].strip() != peer:
                chain.append(peer)
        if chain:
            headers.append((b"x-forwarded-for", b", ".join(chain)))

        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        content = _body(receive) if (length or codings) else (b"" if length == 0 else None)

        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        # raises on a target httpx cannot write; routed on the path the upstream will see
        # (httpx removes dot segments: ``/api/v1/../strategies`` is ``/api/strategies``)
        url = httpx.URL(self.command_url).copy_with(raw_path=target)
        if self.upstream(scope["method"], url.path) != self.command_url:
            url = httpx.URL(self.query_url).copy_with(raw_path=url.raw_path)
        return httpx.Request(scope["method"], url, headers=headers, content=content)

    async def proxy(self, scope, receive, send) -> None:
        try:
            request = self.build(scope, receive)
        except BodyTooLarge:
            await _respond(send, 413, TOO_LARGE, close=True)
            return
        except BadRequest as exc:
            await _respond(send, 400, json.dumps({"detail": str(exc)}).encode())
            return
        except (ValueError, TypeError, httpx.InvalidURL):  # UnicodeError is a ValueError
            await _respond(send, 400, b'{"detail":"Invalid request target or header"}')
            return
        try:
            upstream = await self.client.send(request, stream=True)
        except BodyTooLarge:
            await _respond(send, 413, TOO_LARGE, close=True)
            return
        except ClientGone:
            return
        except httpx.LocalProtocolError:
            # h11 refused to write what the client sent (a header value httpx cannot put on
            # the wire): the client's fault, not the upstream's
            await _respond(send, 400, b'{"detail":"Invalid request header"}')
            return
        except httpx.TransportError:  # connect/read/write errors, timeouts, a dying upstream
            await _respond(send, 503, UNAVAILABLE)
            return
        try:
            named = {token.strip().lower().encode("latin-1")
                     for value in upstream.headers.get_list("connection")
                     for token in value.split(",") if token.strip()}
            headers = [(name.lower(), value) for name, value in upstream.headers.raw
                       if name.lower() not in RESPONSE_DROP and name.lower() not in named]
            await send({"type": "http.response.start", "status": upstream.status_code, "headers": headers})
            # raw bytes, as the upstream encoded them (content-encoding and content-length intact).
            # An upstream failing mid-body propagates: uvicorn then closes the connection, which
            # is how a truncated response must look to the client.
            async for chunk in upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await upstream.aclose()


async def _body(receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (uvicorn pauses reading while we do not ask for more, so
    memory stays bounded); BodyTooLarge as soon as more than MAX_BODY bytes have arrived."""
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > MAX_BODY:
            raise BodyTooLarge
        if chunk:
            yield chunk
        if not message.get("more_body"):
            return


async def _respond(send, status: int, body: bytes, content_type: str = "application/json",
                   close: bool = False) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", b"1"))
    if close:  # the rest of an unread body is not worth receiving: uvicorn closes after the answer
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
