"""The bots' distribution installs on its own: botranks-domain + botranks-client in a fresh venv
bring httpx and msgspec, and none of the server's stack (Litestar, psycopg, NATS...); the people-facing
commands (botranks_client.cli) ship in it and load without rich, their optional extra."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SERVER_STACK = ("litestar", "psycopg", "nats", "eventsourcing", "structlog", "polars", "uvicorn")
NOT_INSTALLED = (*SERVER_STACK, "rich")  # rich: only with the [cli] extra

SMOKE = textwrap.dedent("""
    import argparse, importlib.util, json
    from decimal import Decimal
    import httpx
    import botranks_client
    from botranks_client import Client, SubmitResult

    def answer(request):
        orders = json.loads(request.content)["orders"]
        return httpx.Response(200, json={"accepted": [], "duplicates": [], "counts": {"accepted": 0, "duplicates": 0}})

    with Client("http://bots.test", "fq_live_x", "0b5c7f1e-4a55-4c27-9d0e-0d1f2a3b4c5d",
                transport=httpx.MockTransport(answer)) as client:
        assert client.submit_orders([{"symbol": "AAPL", "side": "buy", "quantity": Decimal("0.1")}]) == SubmitResult()
    assert "site-packages" in botranks_client.__file__, botranks_client.__file__
    from botranks_client.cli import add_commands
    parser = argparse.ArgumentParser(prog="botranks")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["nav", "--csv", "--from", "2026-04-01"])
    assert args.csv and str(args.from_) == "2026-04-01", args
    print(json.dumps({name: importlib.util.find_spec(name) is not None for name in %r}))
""")


def test_the_client_distribution_installs_without_the_server_stack(tmp_path):
    # pip builds in the source tree (build/, *.egg-info): install from copies, not from the checkout
    sources = []
    for rel in ("libs/domain", "clients/python"):
        target = tmp_path / "src" / rel
        shutil.copytree(ROOT / rel, target, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
        sources.append(str(target))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", *sources], capture_output=True, text=True, timeout=600
    )
    if install.returncode != 0:
        pytest.fail(
            "pip install of libs/domain + clients/python failed. It needs setuptools, httpx and msgspec from"
            " the package index (or pip's local wheels/cache); without network access and without them"
            " cached, this test cannot pass.\n" + install.stdout[-2000:] + install.stderr[-4000:]
        )
    smoke = subprocess.run(
        [python, "-c", SMOKE % (NOT_INSTALLED,)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    importable = json.loads(smoke.stdout.strip().splitlines()[-1])
    assert importable == {name: False for name in NOT_INSTALLED}
