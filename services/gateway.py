"""The single base URL of ``botranks up``: an ASGI reverse proxy in front of the two APIs.

Reads of the ledger (GET/HEAD under ``/api/v1``) go to query_api, everything else (ledger
writes, accounts, strategies, API keys) to command_api; ``/schema/openapi.json`` is the union
of both schemas. ``/healthz`` answers 200 ``{"status": "ok"}`` only when every supervised
process and embedded server runs, both APIs answer their ``/healthz`` and query_api's
``/readyz`` is 200 (a 404 there means "no readiness check" and counts as ready); otherwise 503
``{"detail": "...", "down": [names]}``. ``/readyz`` is query_api's, passed through.
``deploy/`` ships a real reverse proxy configuration for production; this exists so that one
command runs everything.
"""

from __future__ import annotations

import asyncio
import json
from typing import Callable

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"}


UNAVAILABLE = b'{"detail":"Service unavailable, retry with backoff"}'
READYZ_TIMEOUT_S = 5.0  # query_api gives its database 3 s before answering 503 itself


class Gateway:
    def __init__(self, command_url: str, query_url: str, down: Callable[[], list[str]]) -> None:
        """``down()`` names the supervised processes and embedded servers not running right now."""
        self.command_url, self.query_url = command_url, query_url
        self.down = down
        self.client = httpx.AsyncClient(timeout=60.0, limits=httpx.Limits(max_connections=200))

    def upstream(self, method: str, path: str) -> str:
        if method in ("GET", "HEAD") and path.startswith("/api/v1/"):
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
            try:
                upstream = await self.client.get(self.query_url + "/readyz", timeout=READYZ_TIMEOUT_S)
            except httpx.HTTPError:
                await _respond(send, 503, json.dumps({"detail": "query_api is not answering",
                                                      "down": ["query_api"]}).encode())
                return
            await _respond(send, upstream.status_code, upstream.content,
                           upstream.headers.get("content-type", "application/json"))
            return
        if path == "/schema/openapi.json" and scope["method"] == "GET":
            try:
                await _respond(send, 200, await self.merged_schema())
            except httpx.HTTPError:
                await _respond(send, 503, UNAVAILABLE)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        url = self.upstream(scope["method"], path) + scope.get("raw_path", path.encode()).decode()
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode()
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.decode().lower() not in HOP_BY_HOP]
        try:
            upstream = await self.client.request(scope["method"], url, headers=headers, content=b"".join(chunks))
        except httpx.HTTPError:
            await _respond(send, 503, UNAVAILABLE)
            return
        out = [(k.encode(), v.encode()) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        out.append((b"content-length", str(len(upstream.content)).encode()))
        await send({"type": "http.response.start", "status": upstream.status_code, "headers": out})
        await send({"type": "http.response.body", "body": upstream.content})


async def _respond(send, status: int, body: bytes, content_type: str = "application/json") -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
