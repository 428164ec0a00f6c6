"""The single base URL of ``botranks up``: an ASGI reverse proxy in front of the two APIs.

Reads of the ledger (GET/HEAD under ``/api/v1``) go to query_api, everything else (ledger
writes, accounts, strategies, API keys) to command_api; ``/healthz`` answers 200 only when
both APIs and the projector are up; ``/schema/openapi.json`` is the union of both schemas.
``deploy/`` ships a real reverse proxy configuration for production; this exists so that one
command runs everything.
"""

from __future__ import annotations

import json
from typing import Callable

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"}


class Gateway:
    def __init__(self, command_url: str, query_url: str, projector_alive: Callable[[], bool]) -> None:
        self.command_url, self.query_url = command_url, query_url
        self.projector_alive = projector_alive
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

    async def healthy(self) -> bool:
        if not self.projector_alive():
            return False
        try:
            for base in (self.command_url, self.query_url):
                if (await self.client.get(base + "/healthz", timeout=2.0)).status_code != 200:
                    return False
        except httpx.HTTPError:
            return False
        return True

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
            ok = await self.healthy()
            body = b'{"status":"ok"}' if ok else b'{"detail":"starting or degraded"}'
            await _respond(send, 200 if ok else 503, body)
            return
        if path == "/schema/openapi.json" and scope["method"] == "GET":
            try:
                await _respond(send, 200, await self.merged_schema())
            except httpx.HTTPError:
                await _respond(send, 503, b'{"detail":"Service unavailable, retry with backoff"}')
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
            await _respond(send, 503, b'{"detail":"Service unavailable, retry with backoff"}')
            return
        out = [(k.encode(), v.encode()) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        out.append((b"content-length", str(len(upstream.content)).encode()))
        await send({"type": "http.response.start", "status": upstream.status_code, "headers": out})
        await send({"type": "http.response.body", "body": upstream.content})


async def _respond(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
