"""No stranger can stall the front door of `botranks up` (issue 19, item 2).

300 unauthenticated connections each announce a 100 kB login body and send one byte of it every
2 s (the attack that used to stop every reader of the hand-written gateway). While they are open,
``GET /state`` and ``/p/leaderboard`` answer in milliseconds; at the read deadline every one of
them has been answered by Caddy, and command_api never saw a single one of them.
"""

from __future__ import annotations

import re
import socket
import statistics
import subprocess
import sys
import threading
import time

import httpx
import pytest

from devtools.stack import ROOT, BotranksUp

pytestmark = pytest.mark.integration

SLOW = 300
DEADLINE_S = 8.0


def _login_requests_seen(base: str) -> float:
    text = httpx.get(base + "/metrics", timeout=10).text
    return sum(
        float(m.group(1))
        for m in re.finditer(r'^botranks_http_requests_total\{[^}]*path="/auth/login"[^}]*\} ([0-9.e+]+)$', text, re.M)
    )


def _slow_login(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    )
    return sock


def test_slow_bodies_stall_nobody_and_are_cut_at_the_deadline(tmp_path):
    with BotranksUp(
        tmp_path, BOTRANKS_REQUEST_READ_TIMEOUT_S=str(DEADLINE_S), BOTRANKS_RATE_LIMIT_PER_MINUTE="1000000"
    ) as up:
        created = subprocess.run(
            [sys.executable, "-m", "tools.cli", "strategy", "create", "--name", "reader"],
            cwd=ROOT,
            env=up.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        creds = __import__("json").loads(created.stdout.strip().splitlines()[-1])
        state_url = f"{up.base}/api/v1/strategies/{creds['strategy_id']}/state"
        auth = {"Authorization": f"Bearer {creds['api_key']}"}
        with httpx.Client(timeout=15) as client:
            assert client.get(state_url, headers=auth).status_code == 200
            assert client.get(up.base + "/p/leaderboard").status_code == 200
            seen_before = _login_requests_seen(up.base)

            opened = time.monotonic()
            sockets = [_slow_login(up.port) for _ in range(SLOW)]
            answers: dict[int, bytes] = {}
            stop = threading.Event()

            def trickle() -> None:  # one byte every 2 s on each connection still open
                while not stop.wait(2.0):
                    for i, sock in enumerate(sockets):
                        if i not in answers:
                            try:
                                sock.sendall(b" ")
                            except OSError:
                                answers.setdefault(i, b"<closed>")

            trickler = threading.Thread(target=trickle, daemon=True)
            trickler.start()
            try:
                latencies = {"state": [], "leaderboard": []}
                while time.monotonic() - opened < DEADLINE_S - 2:
                    for name, url, headers in (
                        ("state", state_url, auth),
                        ("leaderboard", up.base + "/p/leaderboard", {}),
                    ):
                        started = time.perf_counter()
                        r = client.get(url, headers=headers)
                        latencies[name].append(time.perf_counter() - started)
                        assert r.status_code == 200, r.text
                    time.sleep(0.02)

                # at the deadline, each slow request is answered by Caddy (or its socket closed)
                for i, sock in enumerate(sockets):
                    sock.settimeout(max(0.1, opened + DEADLINE_S + 5 - time.monotonic()))
                    data = b""
                    try:
                        while b"\r\n\r\n" not in data and (chunk := sock.recv(4096)):
                            data += chunk
                    except OSError as exc:  # a reset is an end too; a timeout is not
                        assert not isinstance(exc, TimeoutError), f"connection {i} not answered after the deadline"
                    answers.setdefault(i, data)
                ended = time.monotonic() - opened
            finally:
                stop.set()
                trickler.join(5)
                for sock in sockets:
                    sock.close()

            for name, values in latencies.items():
                values.sort()
                print(
                    f"{name}: {len(values)} reads with {SLOW} slow bodies open: median "
                    f"{statistics.median(values) * 1000:.1f} ms, p95 {values[int(len(values) * 0.95)] * 1000:.1f} ms, "
                    f"max {values[-1] * 1000:.1f} ms"
                )
                assert len(values) >= 20
                assert statistics.median(values) < 0.1, values
                assert values[-1] < 2.0, values
            print(f"all {SLOW} slow connections answered {ended:.1f} s after opening (deadline {DEADLINE_S} s)")
            statuses = {bytes(a[:12]) for a in answers.values()}
            assert len(answers) == SLOW and statuses <= {b"HTTP/1.1 499", b"HTTP/1.1 408", b"", b"<closed>"}, statuses
            # none of them ever reached command_api
            assert _login_requests_seen(up.base) == seen_before
            # and the door serves the next request as usual
            assert client.get(state_url, headers=auth).status_code == 200
