"""The gateway of `botranks up` is a faithful, stateless proxy (issue 9).

Through a real `botranks up` (embedded default, started once for the module): an anonymous
request never rides on somebody else's session, an empty bearer token is the API's 401, bodies
over 1 MiB are 413 (announced or streamed) with the gateway's memory bounded, and the ledger
still works end to end. Against a tiny upstream (the Gateway class served by uvicorn, as the
supervisor does): repeated headers both ways, hop-by-hop headers dropped, one `date`/`server`,
X-Forwarded-*, bodies streamed both ways, client errors 400 and an unreachable upstream 503.

Every "user" has its own fresh httpx client: a shared test client's cookie jar would hide the
bug these tests are about.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn

from devtools.stack import ROOT, BotranksUp
from services.gateway.caddy import LOOPBACK_HOSTS, FrontDoor
from tools.processes import free_port, wait_for_port

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
MAX_BODY = 1024 * 1024


# ---------------------------------------------------------------- a real `botranks up`


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    with BotranksUp(tmp_path_factory.mktemp("gateway"), BOTRANKS_RATE_LIMIT_PER_MINUTE="1000000") as system:
        system.pid = json.loads((system.home / "run" / "pids.json").read_text())["gateway"]  # Caddy
        yield system


def _strategy(up, name: str) -> tuple[str, str]:
    created = subprocess.run(
        [sys.executable, "-m", "tools.cli", "strategy", "create", "--name", name],
        cwd=ROOT,
        env=up.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    creds = json.loads(created.stdout.strip().splitlines()[-1])
    return creds["strategy_id"], creds["api_key"]


def _raw_http(
    port: int, request: bytes, timeout: float = 10.0, allow_close: bool = False
) -> tuple[int, dict[str, list[str]], bytes]:
    """One request on a fresh socket, bytes exactly as given (httpx refuses to send some of
    them, e.g. a header value with trailing whitespace); the response read until it is whole
    (``allow_close``: or until the server closes, for answers without a Content-Length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                lines = head.decode("latin-1").split("\r\n")
                headers: dict[str, list[str]] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers.setdefault(name.strip().lower(), []).append(value.strip())
                if "content-length" in headers and len(body) >= int(headers["content-length"][0]):
                    return int(lines[0].split()[1]), headers, body[: int(headers["content-length"][0])]
            chunk = sock.recv(65536)
            if not chunk:
                if allow_close and sep:
                    return int(lines[0].split()[1]), headers, body
                break
            data += chunk
    raise AssertionError(f"no whole response: {data[:500]!r}")


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_an_anonymous_request_never_rides_on_someone_elses_session(up):
    with httpx.Client(base_url=up.base, timeout=30) as alice, httpx.Client(base_url=up.base, timeout=30) as bob:
        r = alice.post("/auth/register", json={"email": "alice@example.com", "password": PASSWORD})
        assert r.status_code == 201, r.text
        login = alice.post("/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert len(login.headers.get_list("set-cookie")) == 1 and alice.cookies.get("access_token")
        r = alice.post("/strategies", json={"name": "alice-bot"})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]

        # nobody's cookie (a brand-new client each time, no Cookie header at all)
        r = httpx.post(f"{up.base}/strategies/{sid}/api-keys", json={"name": "stolen"}, timeout=30)
        assert r.status_code == 401, r.text
        assert r.json()["detail"] and "plaintext" not in r.text
        r = httpx.get(f"{up.base}/strategies", timeout=30)
        assert r.status_code == 401, r.text
        r = httpx.get(f"{up.base}/strategies/{sid}/api-keys", timeout=30)
        assert r.status_code == 401, r.text

        # another user sees their own (empty) account, not Alice's
        assert bob.post("/auth/register", json={"email": "bob@example.com", "password": PASSWORD}).status_code == 201
        assert bob.post("/auth/login", json={"email": "bob@example.com", "password": PASSWORD}).status_code == 200
        assert bob.get("/strategies").json() == []
        assert bob.post(f"/strategies/{sid}/api-keys", json={"name": "nope"}).status_code in (403, 404)

        # and Alice is still Alice, after Bob signed in through the same gateway
        assert [s["id"] for s in alice.get("/strategies").json()] == [sid]
        r = alice.post(f"/strategies/{sid}/api-keys", json={"name": "alice-prod"})
        assert r.status_code == 201 and r.json()["plaintext"].startswith("fq_live_")

        # logging out ends the session for Alice only; anonymous stays anonymous
        assert alice.post("/auth/logout").status_code == 200
        assert httpx.get(f"{up.base}/strategies", timeout=30).status_code == 401
        assert bob.get("/strategies").status_code == 200

    # X-Forwarded-Proto reaches command_api: behind a TLS front the session cookie is Secure
    r = httpx.post(
        f"{up.base}/auth/login",
        json={"email": "alice@example.com", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
        timeout=30,
    )
    assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower()
    r = httpx.post(f"{up.base}/auth/login", json={"email": "alice@example.com", "password": PASSWORD}, timeout=30)
    assert r.status_code == 200 and "secure" not in r.headers["set-cookie"].lower()


def test_an_empty_bearer_token_is_the_apis_401(up):
    sid, key = _strategy(up, "empty-bearer")
    for value in (b"Bearer ", b"Bearer", b"Bearer  \t", b""):
        status, headers, body = _raw_http(
            up.port,
            b"GET /api/v1/strategies/" + sid.encode() + b"/state HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nAuthorization: " + value + b"\r\n\r\n",
        )
        assert status == 401, (value, status, body)
        assert json.loads(body)["detail"], body
        assert "retry-after" not in headers
    # the same on command_api's side (a write)
    status, _, body = _raw_http(
        up.port,
        b"POST /api/v1/strategies/" + sid.encode() + b"/orders HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nAuthorization: Bearer \r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}",
    )
    assert status == 401 and json.loads(body)["detail"], body


def test_non_utf8_header_bytes_are_4xx_through_the_gateway(up):
    sid, _ = _strategy(up, "odd-bytes")
    for header in (b"Authorization: Bearer \xff\xfe", b"Cookie: access_token=\xff\xfe"):
        status, _, body = _raw_http(
            up.port,
            b"GET /api/v1/strategies/" + sid.encode() + b"/state HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\n" + header + b"\r\n\r\n",
        )
        assert 400 <= status < 500 and json.loads(body)["detail"], (header, status, body)
    status, _, body = _raw_http(
        up.port, b"GET /strategies HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: access_token=\xff\xfe\r\n\r\n"
    )
    assert 400 <= status < 500 and json.loads(body)["detail"], (status, body)


def test_orders_and_state_still_work_through_the_gateway(up):
    sid, key = _strategy(up, "through-the-gateway")
    with httpx.Client(
        base_url=f"{up.base}/api/v1/strategies/{sid}", timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as api:
        r = api.post(
            "/orders",
            json={
                "orders": [
                    {
                        "symbol": "AAPL",
                        "side": "buy",
                        "quantity": 100,
                        "price": 189.42,
                        "executed_at": "2026-04-18T14:31:22Z",
                        "external_order_id": "gw-00001",
                    }
                ]
            },
        )
        assert r.status_code == 200 and r.json()["counts"] == {"accepted": 1, "duplicates": 0}, r.text
        assert r.headers.get_list("date") and len(r.headers.get_list("date")) == 1
        assert len(r.headers.get_list("server")) == 1
        assert r.headers["ratelimit-limit"]  # the API's own headers pass through
        state = api.get("/state")
        assert state.status_code == 200, state.text
        assert state.json()["positions"][0]["symbol"] == "AAPL" and state.json()["positions"][0]["quantity"] == 100
        assert int(state.headers["content-length"]) == len(state.content)
        nav = api.get("/nav", headers={"Accept": "text/csv"})
        assert nav.status_code == 200 and nav.headers["content-type"].startswith("text/csv")
    # the gateway's own endpoints are untouched
    assert httpx.get(up.base + "/healthz", timeout=10).json() == {"status": "ok"}
    schema = httpx.get(up.base + "/schema/openapi.json", timeout=10).json()
    assert "/api/v1/strategies/{strategy_id}/state" in schema["paths"] and "/auth/login" in schema["paths"]


def test_bodies_over_1_mib_are_413_and_the_gateway_memory_stays_bounded(up):
    sid, key = _strategy(up, "big-bodies")
    orders = f"{up.base}/api/v1/strategies/{sid}/orders"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    # announced by Content-Length: refused before a byte of the body is read
    status, resp_headers, body = _raw_http(
        up.port,
        b"POST /api/v1/strategies/" + sid.encode() + b"/orders HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2097152\r\n\r\n",
    )
    assert (status, json.loads(body)) == (413, {"detail": "Request body over 1 MiB"})
    r = httpx.post(orders, content=b" " * (2 * 1024 * 1024), headers=headers, timeout=30)
    assert (r.status_code, r.json()) == (413, {"detail": "Request body over 1 MiB"})
    # also without authentication: the limit comes before it
    r = httpx.post(orders, content=b" " * (2 * 1024 * 1024), timeout=30)
    assert r.status_code == 413

    # 200 MB chunked from a generator: 413 as soon as 1 MiB has arrived, memory bounded
    baseline = _rss_kib(up.pid)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kib(up.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sent = [0]

    def chunks():
        for _ in range(200 * 16):
            sent[0] += 64 * 1024
            yield b"[" * (64 * 1024)

    started = time.monotonic()
    try:
        r = httpx.post(orders, content=chunks(), headers=headers, timeout=60)
    finally:
        elapsed = time.monotonic() - started
        done.set()
        sampler.join(5)
    print(
        f"200 MB chunked: {r.status_code} after {elapsed:.2f} s, {sent[0] / 1e6:.0f} MB offered; "
        f"Caddy RSS {baseline / 1024:.0f} MiB -> peak {peak[0] / 1024:.0f} MiB"
    )
    assert (r.status_code, r.json()) == (413, {"detail": "Request body over 1 MiB"})
    assert elapsed < 10, elapsed
    assert sent[0] < 50 * 1024 * 1024, "the gateway kept reading after answering 413"
    assert peak[0] < 200 * 1024, f"Caddy RSS peaked at {peak[0] / 1024:.0f} MiB"
    assert peak[0] - baseline < 64 * 1024, f"RSS grew {(peak[0] - baseline) / 1024:.0f} MiB"

    # the gateway is fine afterwards, and a body just under the limit still reaches the API
    r = httpx.post(orders, content=b" " * 1000 + b'{"orders": []}', headers=headers, timeout=30)
    assert r.status_code == 422, r.text  # the API's own answer (an empty batch), not the gateway's


# ---------------------------------------------------------------- a tiny upstream


class Upstream:
    """Answers every request with what it received (headers as a list of pairs, body size,
    path, its own name), two Set-Cookie headers, two X-Multi headers and a few hop-by-hop
    ones. ``/stream`` sends a first chunk, then waits for ``release`` before the rest;
    ``/upload`` tells ``first_chunk`` as soon as a first piece of the body has arrived."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.release = threading.Event()
        self.first_chunk = threading.Event()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/stream":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")],
                }
            )
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            for _ in range(200):
                if self.release.is_set():
                    break
                await asyncio.sleep(0.05)
            await send({"type": "http.response.body", "body": b"-rest" * 1000})
            return
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if size:
                self.first_chunk.set()
            if not message.get("more_body"):
                break
        body = json.dumps(
            {
                "upstream": self.name,
                "path": scope["path"],
                "size": size,
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"set-cookie", b"a=1; Path=/; HttpOnly"),
                    (b"set-cookie", b"b=2; Path=/"),
                    (b"x-multi", b"one"),
                    (b"x-multi", b"two"),
                    (b"connection", b"x-upstream-hop"),
                    (b"x-upstream-hop", b"1"),
                    (b"keep-alive", b"timeout=5"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _serve(app) -> tuple[uvicorn.Server, threading.Thread, int]:
    port = free_port()
    # the supervisor's settings: uvicorn adds its own date and server headers
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port, 20)
    return server, thread, port


class Door:
    """Caddy as ``botranks up`` configures it (services/gateway/caddy.py), in front of given upstreams."""

    def __init__(self, tmp: Path, command: int, query: int, ops: int, **kw) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.door = FrontDoor(
            port=self.port,
            command=f"127.0.0.1:{command}",
            query=f"127.0.0.1:{query}",
            ops=f"127.0.0.1:{ops}",
            storage=tmp / "caddy",
            **kw,
        )
        config = self.door.write(tmp / "Caddyfile")
        self.process = subprocess.Popen(
            self.door.argv(config),
            env=self.door.environment(dict(os.environ)),
            stdout=open(tmp / "caddy.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, 20)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    command, query, ops = Upstream("command"), Upstream("query"), Upstream("ops")
    servers = [_serve(command), _serve(query), _serve(ops)]
    door = Door(
        tmp_path_factory.mktemp("door"),
        servers[0][2],
        servers[1][2],
        servers[2][2],
        hosts=(*LOOPBACK_HOSTS, "botranks.example"),
    )
    try:
        yield SimpleNamespace(
            base=door.base, port=door.port, command=command, query=query, ops=ops, command_port=servers[0][2]
        )
    finally:
        door.stop()
        for server, thread, _ in reversed(servers):
            server.should_exit = True
            thread.join(10)


def _pairs(r: httpx.Response) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in r.json()["headers"]]


def test_repeated_headers_both_ways_hop_by_hop_dropped_forwarded_headers_set(echo):
    with httpx.Client(base_url=echo.base, timeout=10) as client:
        r = client.post(
            "/strategies",
            content=b'{"x": 1}',
            headers=[
                ("Content-Type", "application/json"),
                ("X-Multi", "a"),
                ("X-Multi", "b"),
                ("Cookie", "access_token=mine; other=1"),
                ("Connection", "keep-alive, X-Client-Hop"),
                ("X-Client-Hop", "secret"),
                ("Keep-Alive", "timeout=9"),
                ("TE", "trailers"),
                ("Proxy-Authorization", "Basic eDp5"),
                ("Proxy", "http://evil:1"),
                ("Host", "botranks.example:8443"),
                ("X-Forwarded-Host", "spoofed.example"),
                ("X-Forwarded-For", "6.6.6.6"),
            ],
        )
        assert r.status_code == 200, r.text
        # response: two Set-Cookie and two X-Multi as two, one date and one server, hop-by-hop gone
        assert r.headers.get_list("set-cookie") == ["a=1; Path=/; HttpOnly", "b=2; Path=/"]
        assert r.headers.get_list("x-multi") == ["one", "two"]
        assert len(r.headers.get_list("date")) == 1 and r.headers.get_list("server") == ["uvicorn"]
        assert "x-upstream-hop" not in r.headers and "keep-alive" not in r.headers
        assert int(r.headers["content-length"]) == len(r.content)

        got = _pairs(r)
        names = [k for k, _ in got]
        assert r.json()["upstream"] == "command" and r.json()["size"] == 8
        assert [v for k, v in got if k == "x-multi"] == ["a", "b"]
        assert [v for k, v in got if k == "cookie"] == ["access_token=mine; other=1"]
        for hop in ("connection", "keep-alive", "x-client-hop", "proxy-authorization", "proxy", "transfer-encoding"):
            assert hop not in names, (hop, names)
        assert [v for k, v in got if k == "te"] in ([], ["trailers"])  # RFC 9110 7.6.1 allows TE: trailers on
        # the client's own forwarding headers are replaced (it is no trusted proxy)
        assert [v for k, v in got if k == "x-forwarded-host"] == ["botranks.example:8443"]
        assert [v for k, v in got if k == "x-forwarded-proto"] == ["http"]
        assert [v for k, v in got if k == "x-forwarded-for"] == ["127.0.0.1"]
        assert [v for k, v in got if k == "content-length"] == ["8"]
        assert [v for k, v in got if k == "user-agent"] == [client.headers["user-agent"]]

        # no cookie jar: the next request without a cookie (a fresh client) arrives without one
        r = httpx.get(echo.base + "/strategies", timeout=10)
        assert "cookie" not in [k for k, _ in _pairs(r)]

        # reads of the ledger go to query_api, writes and the rest to command_api, ops paths to the ops app
        assert client.get("/api/v1/strategies/x/state").json()["upstream"] == "query"
        assert client.head("/api/v1/strategies/x/state").status_code == 200
        assert client.post("/api/v1/strategies/x/orders", content=b"{}").json()["upstream"] == "command"
        assert client.get("/healthz").json()["upstream"] == "ops"
        assert client.get("/schema/openapi.json").json()["upstream"] == "ops"
        assert client.post("/schema/openapi.json").json()["upstream"] == "command"


def test_a_foreign_host_is_400_before_any_service(echo):
    for host in (b"evil.example", b"evil.example:80", b"127.0.0.1.nip.io", b"botranks.example.evil"):
        status, headers, body = _raw_http(
            echo.port, b"POST /auth/register HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 2\r\n\r\n{}"
        )
        assert status == 400 and "Host" in json.loads(body)["detail"], (host, status, body)
        assert headers["content-type"] == ["application/json"]
    for host in (b"localhost:1", b"127.0.0.1", b"[::1]:8000", b"botranks.example"):
        status, _, body = _raw_http(echo.port, b"GET /healthz HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        assert status == 200 and json.loads(body)["upstream"] == "ops", (host, status)


def test_readyz_and_metrics_are_private(echo, tmp_path):
    # here everyone is on loopback: the rule is shown with a door whose "local" clients are 127.0.0.2 only
    door = Door(
        tmp_path,
        echo.command_port,
        echo.command_port,
        echo.command_port,
        ops_clients=("127.0.0.2/32",),
        ops_token="t0ken-of-sixteen-chars",
    )
    try:
        for path in ("/readyz", "/metrics"):
            r = httpx.get(door.base + path, timeout=10)
            assert (r.status_code, r.json()) == (404, {"detail": "Not found"}), path
            r = httpx.get(door.base + path, headers={"Authorization": "Bearer wrong-token-of-sixteen"}, timeout=10)
            assert r.status_code == 404, path
            r = httpx.get(door.base + path, headers={"Authorization": "Bearer t0ken-of-sixteen-chars"}, timeout=10)
            assert r.status_code == 200 and r.json()["path"] == path, path
        assert httpx.get(door.base + "/healthz", timeout=10).status_code == 200  # public: ok or down, nothing more
    finally:
        door.stop()
    # loopback clients of the default door read them
    assert httpx.get(echo.base + "/metrics", timeout=10).json()["upstream"] == "ops"


def test_bodies_buffered_before_the_upstream_with_the_limit(echo):
    with httpx.Client(base_url=echo.base, timeout=20) as client:
        # response: the first chunk reaches the client while the upstream still holds the rest
        echo.command.release.clear()
        with client.stream("GET", "/stream") as r:
            chunks = r.iter_raw()
            assert next(chunks).startswith(b"first")
            echo.command.release.set()
            assert b"".join(chunks).endswith(b"-rest")

        # request: the upstream sees nothing of it before the client has sent all of it
        echo.command.first_chunk.clear()
        seen = []

        def upload():
            yield b"x" * 1000
            seen.append(echo.command.first_chunk.wait(1.0))
            yield b"y" * 1000

        r = client.post("/upload", content=upload())
        assert r.status_code == 200 and r.json()["size"] == 2000 and seen == [False]

        # exactly 1 MiB passes, one byte more is 413 (announced or chunked)
        assert client.post("/upload", content=b"z" * MAX_BODY).json()["size"] == MAX_BODY
        assert client.post("/upload", content=iter([b"z" * MAX_BODY])).json()["size"] == MAX_BODY
        for content in (b"z" * (MAX_BODY + 1), iter([b"z" * MAX_BODY, b"z"])):
            r = client.post("/upload", content=content)
            assert (r.status_code, r.json()) == (413, {"detail": "Request body over 1 MiB"})
        assert client.get("/upload").json()["size"] == 0  # and the door carries on


def test_client_errors_are_4xx_and_only_an_unreachable_upstream_is_503(echo, tmp_path):
    for bad in (b"X-Bad: a\x00b", b"X-Bad a", b"Transfer-Encoding: gzip, chunked"):
        status, _, body = _raw_http(
            echo.port,
            b"POST /strategies HTTP/1.1\r\nHost: a\r\n" + bad + b"\r\nContent-Length: 2\r\n\r\n{}",
            allow_close=True,
        )
        assert 400 <= status < 500 or status == 501, (bad, status, body)
    # an empty bearer token and obs-text reach the upstream, not a 503
    status, _, body = _raw_http(
        echo.port, b"GET /strategies HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \r\nX-Latin: caf\xe9\r\n\r\n"
    )
    assert status == 200, body
    headers = json.loads(body)["headers"]
    assert ["authorization", "Bearer"] in headers and ["x-latin", "caf\xe9"] in headers

    dead = Door(tmp_path, free_port(), free_port(), free_port())
    try:
        r = httpx.post(dead.base + "/strategies", content=b"{}", timeout=10)
        assert r.status_code == 503 and r.json()["detail"] and r.headers["retry-after"] == "1"
    finally:
        dead.stop()
