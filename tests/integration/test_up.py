"""The README's first command: `botranks up` on the embedded default, then the quick start;
the gateway's /healthz and /readyz, and the supervisor's restart backoff."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.stack import BotranksUp, wait_until
from libs.infra.settings import Settings
from services.gateway.ops import Ops
from tools import supervisor

pytestmark = pytest.mark.integration


def test_every_service_answers_healthz_readyz_and_metrics_at_the_base_url_with_two_api_workers(tmp_path):
    with BotranksUp(tmp_path, timeout=120, BOTRANKS_API_WORKERS="2") as up:
        ready = httpx.get(up.base + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["services"]) == {"command_api", "query_api", "relay", "projector"}
        assert ready.json()["services"]["projector"]["partitions_owned"] == list(range(16))
        creds = json.loads(up.cli("strategy", "create", "--name", "metrics", timeout=60).strip().splitlines()[-1])
        headers = {"Authorization": f"Bearer {creds['api_key']}"}
        api = f"{up.base}/api/v1/strategies/{creds['strategy_id']}"
        for i in range(6):  # several requests: both workers of each API serve some
            r = httpx.post(
                api + "/orders",
                headers=headers,
                json={
                    "orders": [
                        {"symbol": "AAPL", "side": "buy", "quantity": 1, "price": 100 + i, "external_order_id": f"o{i}"}
                    ]
                },
            )
            assert r.status_code == 200 and r.headers["BotRanks-Projected"] == "true"
            assert httpx.get(api + "/state", headers=headers).json()["positions"][0]["quantity"] == i + 1

        def scrape() -> list:
            text = httpx.get(up.base + "/metrics", timeout=10).text
            return [s for family in text_string_to_metric_families(text) for s in family.samples]

        def lag(found: list) -> float:
            return sum(s.value for s in found if s.name == "botranks_projection_lag_events")

        wait_until(lambda: lag(scrape()) == 0, 10, "every partition to reach the head")
        samples = scrape()

        def value(name: str, **labels: str) -> float:
            found = [
                s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
            ]
            assert found, f"no {name} {labels} in /metrics"
            return sum(found)

        assert value("botranks_ingested_total", kind="order", outcome="accepted") == 6  # summed over the workers
        assert value("botranks_http_requests_total", service="query_api", method="GET") >= 6
        assert value("botranks_http_request_duration_seconds_count", service="command_api") >= 6
        assert value("botranks_relay_published_total", service="relay") >= 6
        assert value("botranks_projected_events_total", service="projector") >= 6
        assert value("botranks_projection_lag_events", service="projector") == 0
        assert len([s for s in samples if s.name == "botranks_projection_position"]) == 16
        assert value("botranks_rebuild_progress_ratio") == 1.0
        for name in ("command_api", "query_api", "relay", "projector"):
            assert any(s.labels.get("service") == name for s in samples), name


def test_botranks_up_embedded_quick_start(tmp_path):
    with BotranksUp(tmp_path, timeout=120) as up:
        assert httpx.get(up.base + "/healthz").json() == {"status": "ok"}
        assert httpx.get(up.base + "/readyz").status_code in (200, 404)  # query_api's, passed through
        pids = json.loads((up.home / "run" / "pids.json").read_text())
        assert set(pids) == {
            "supervisor",
            "command_api",
            "query_api",
            "relay",
            "projector",
            "market_data",
            "notifier",
            "demo_live",
            "gateway",
            "nats",
            "postgres",
        }
        creds = json.loads(up.cli("strategy", "create", "--name", "readme", timeout=60).strip().splitlines()[-1])
        headers = {"Authorization": f"Bearer {creds['api_key']}"}
        api = f"{up.base}/api/v1/strategies/{creds['strategy_id']}"
        r = httpx.post(
            api + "/orders",
            headers=headers,
            json={
                "orders": [
                    {
                        "symbol": "AAPL",
                        "side": "buy",
                        "quantity": 100,
                        "price": 189.42,
                        "executed_at": "2026-04-18T14:31:22Z",
                        "external_order_id": "tb-20260418-00001",
                    }
                ]
            },
        )
        assert r.status_code == 200 and r.json()["counts"] == {"accepted": 1, "duplicates": 0}
        state = httpx.get(api + "/state", headers=headers).json()
        assert state["positions"][0]["symbol"] == "AAPL" and state["positions"][0]["quantity"] == 100
        assert state["last_order_at"] == "2026-04-18T14:31:22Z"
    log = up.log.read_text()
    assert '"event": "stopped"' in log, log[-2000:]
    password = (up.home / "nats" / "auth.conf").read_text().split('password: "')[1].split('"')[0]
    assert password not in log  # the supervisor logs the NATS URL without its credentials


def _gateway(down: list[str], handler) -> httpx.AsyncClient:
    ops = Ops("http://command", "http://query", lambda: list(down))
    ops.client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=ops), base_url="http://gw")


def test_ops_healthz_names_what_is_down_and_passes_readyz_through():
    readyz = {"status": 404, "body": b'{"detail":"Not Found"}'}
    query_up = {"value": True}

    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.host == "query" and not query_up["value"]:
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/readyz":
            return httpx.Response(
                readyz["status"], content=readyz["body"], headers={"content-type": "application/json"}
            )
        return httpx.Response(200, json={"status": "ok"})

    async def scenario() -> None:
        down: list[str] = []
        async with _gateway(down, upstream) as gw:
            r = await gw.get("/healthz")  # a query_api without /readyz: nothing to check
            assert (r.status_code, r.json()) == (200, {"status": "ok"})
            assert (await gw.get("/readyz")).status_code == 200

            readyz.update(status=200, body=b'{"status":"ok","database":"ok","projector_lag":0,"quarantined":[]}')
            assert (await gw.get("/healthz")).status_code == 200
            r = await gw.get("/readyz")  # every service's readiness, by name
            assert (r.status_code, r.json()["services"]["query_api"]["database"]) == (200, "ok")

            readyz.update(status=503, body=b'{"status":"unavailable","database":"down","detail":"x"}')
            r = await gw.get("/healthz")
            assert r.status_code == 503 and r.json()["down"] == ["query_api/readyz"] and r.json()["detail"]
            r = await gw.get("/readyz")
            assert (r.status_code, r.json()["services"]["query_api"]["database"]) == (503, "down")
            assert set(r.json()["down"]) == {"command_api", "query_api"}  # (the mock answers both alike)

            readyz.update(status=200)
            down[:] = ["nats", "postgres"]
            r = await gw.get("/healthz")
            assert r.status_code == 503 and r.json()["down"] == ["nats", "postgres"]
            assert r.headers["retry-after"]

            down[:] = []
            query_up["value"] = False
            r = await gw.get("/healthz")
            assert r.status_code == 503 and r.json()["down"] == ["query_api", "query_api/readyz"]
            r = await gw.get("/readyz")
            assert r.status_code == 503 and r.json()["down"] == ["query_api"]
            r = await gw.get("/api/v1/strategies/x/state")  # not the ops app's: Caddy sends it to query_api
            assert r.status_code == 404 and r.json()["detail"]

            down[:] = ["query_api"]  # a dead process is not asked anything
            r = await gw.get("/healthz")
            assert r.status_code == 503 and r.json()["down"] == ["query_api"]

    asyncio.run(scenario())


def test_restart_backoff_resets_once_a_child_has_stayed_up(tmp_path, monkeypatch):
    monkeypatch.setattr(supervisor, "STABLE_AFTER_S", 1.5)
    flag = tmp_path / "stay-up"
    script = f"import os, sys, time; time.sleep(0.05) if not os.path.exists({str(flag)!r}) else time.sleep(60)"
    child = supervisor.Child("flaky", [sys.executable, "-c", script], dict(os.environ))
    system = supervisor.System(settings=Settings(home=tmp_path), port=0, children=[child])
    child.start()
    watcher = threading.Thread(target=system.watch_children, daemon=True)
    watcher.start()
    try:
        wait_until(lambda: child.restarts >= 3, 30, "a crashing child to be restarted with growing backoff")
        Path(flag).touch()
        wait_until(lambda: child.alive() and time.monotonic() - child.started_at > 0.5, 30, "the child to stay up")
        assert child.restarts >= 3
        wait_until(lambda: child.restarts == 0, 10, "the restart counter to reset")
        assert child.alive()
        assert json.loads((tmp_path / "run" / "pids.json").read_text())["flaky"] == child.pid
    finally:
        system.stopping = True
        watcher.join(5)
        child.stop()
