"""The ops app of ``botranks up``: what the front door (Caddy, ``caddy.py``) does not proxy to an API.

``/healthz`` answers 200 ``{"status": "ok"}`` only when every supervised process and embedded
server runs, both APIs answer their ``/healthz`` (each checks its own database) and query_api's
``/readyz`` is 200 (a 404 there means "no readiness check" and counts as ready); otherwise 503
``{"detail": "...", "down": [names]}``. ``/readyz`` is every service's readiness, ``/metrics``
every service's exposition, labelled by service (both private: Caddy serves them to loopback
clients or a bearer token only), and ``/schema/openapi.json`` the union of both APIs' schemas.
Served by uvicorn on a loopback port of its own; nothing else reaches it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from libs.infra.metrics import CONTENT_TYPE_LATEST, merge_expositions

UNAVAILABLE = b'{"detail":"Service unavailable, retry with backoff"}'
NOT_FOUND = b'{"detail":"Not found"}'
#: /healthz answers within a second even when a service or its database hangs
HEALTH_TIMEOUT_S = 0.8
READYZ_TIMEOUT_S = 5.0  # query_api gives its database 3 s before answering 503 itself


def new_client() -> httpx.AsyncClient:
    # trust_env=False: no HTTP(S)_PROXY / NO_PROXY from the environment between us and the services
    return httpx.AsyncClient(timeout=30.0, trust_env=False, follow_redirects=False)


class Ops:
    def __init__(
        self, command_url: str, query_url: str, down: Callable[[], list[str]], workers: dict[str, str] | None = None
    ) -> None:
        """``down()`` names the supervised processes and embedded servers not running right now;
        ``workers``: the health servers (``/healthz``, ``/readyz``, ``/metrics``) of the services without
        an HTTP API, by name."""
        self.command_url, self.query_url = command_url, query_url
        self.down = down
        self.services = {"command_api": command_url, "query_api": query_url, **(workers or {})}
        self.client = new_client()

    async def merged_schema(self) -> bytes:
        """The OpenAPI document: each API serves the one of both (libs/infra/surface.py), passed through."""
        answer = await self.client.get(self.query_url + "/schema/openapi.json")
        answer.raise_for_status()
        return answer.content

    async def _answers(self, url: str, ok: tuple[int, ...] = (200,), timeout: float = HEALTH_TIMEOUT_S) -> bool:
        try:
            return (await self.client.get(url, timeout=timeout)).status_code in ok
        except httpx.HTTPError:
            return False

    async def health(self) -> tuple[int, bytes]:
        down = list(self.down())
        checks = {
            name: url
            for name, url in (
                ("command_api", self.command_url + "/healthz"),
                ("query_api", self.query_url + "/healthz"),
            )
            if name not in down
        }
        if "query_api" not in down:
            # query_api's database answers (404: a query_api without /readyz, nothing to check)
            checks["query_api/readyz"] = self.query_url + "/readyz"
        results = await asyncio.gather(
            *(
                self._answers(url, (200, 404)) if name.endswith("readyz") else self._answers(url)
                for name, url in checks.items()
            )
        )
        down += [name for name, ok in zip(checks, results, strict=True) if not ok and name not in down]
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
        body: dict[str, Any] = {
            "status": "ok" if not down else "unavailable",
            "services": {name: answer for name, _, answer in results},
        }
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
        await _respond(send, 404, NOT_FOUND)


async def _respond(send, status: int, body: bytes, content_type: str = "application/json") -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
