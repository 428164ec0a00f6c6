"""The README's first command: `botranks up` on the embedded default, then the quick start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from libs.infra.embedded import free_port

from .stack import ROOT, wait_until

pytestmark = pytest.mark.integration


def test_botranks_up_embedded_quick_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTRANKS_")}
    env["BOTRANKS_HOME"] = str(tmp_path / "home")
    port = free_port()
    up = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--port", str(port)], cwd=ROOT, env=env,
                          stdout=open(tmp_path / "up.log", "wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            try:
                return httpx.get(base + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 120, "botranks up to be healthy")
        created = subprocess.run([sys.executable, "-m", "services.cli", "strategy", "create", "--name", "readme"],
                                 cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60)
        creds = json.loads(created.stdout.strip().splitlines()[-1])
        headers = {"Authorization": f"Bearer {creds['api_key']}"}
        api = f"{base}/api/v1/strategies/{creds['strategy_id']}"
        r = httpx.post(api + "/orders", headers=headers, json={"orders": [{
            "symbol": "AAPL", "side": "buy", "quantity": 100, "price": 189.42,
            "executed_at": "2026-04-18T14:31:22Z", "external_order_id": "tb-20260418-00001"}]})
        assert r.status_code == 200 and r.json()["counts"] == {"accepted": 1, "duplicates": 0}
        state = httpx.get(api + "/state", headers=headers).json()
        assert state["positions"][0]["symbol"] == "AAPL" and state["positions"][0]["quantity"] == 100
        assert state["last_order_at"] == "2026-04-18T14:31:22Z"
    finally:
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0 or up.returncode is not None
    log = (tmp_path / "up.log").read_text()
    assert '"event": "stopped"' in log, log[-2000:]
