"""Schemathesis against the API as a client meets it: the OpenAPI document served at the base URL of a
real ``botranks up`` (both APIs in one), every check on, every phase (examples, coverage, fuzzing,
stateful), signed in with the session cookie and an API key through the document's own
securitySchemes. Any 5xx, any answer outside the document, any request the document calls invalid
but the server takes (or valid but the server refuses) fails the test.

Bounded: ``ST_MAX_EXAMPLES`` (default 30) per operation, 2 workers, a fixed seed (``ST_SEED``).

What is not checked, and why:
- ``POST /auth/logout``: it would end the session the run signs in with (tests/integration/test_sessions.py).
- ``positive_data_acceptance`` also takes 422 from the ledger writes and 400 from /performance and /nav (and
  /p/compare: the same id twice):
  rules JSON Schema cannot state, all in the spec: a withdraw's amount < 0 and a deposit's > 0 (by
  ``event_type``), an open position's cost_basis > 0 (by ``quantity``), at most 18 digits after the
  point (a JSON Schema bound on a JSON number cannot say it exactly), a decimal given as a string is
  bounded like the number, an order without a price needs a close on its day, nothing more than 5
  minutes in the future; a benchmark symbol resolves only if it has prices, and ``from`` must not be
  after ``to``; a webhook's URL must be http(s) and its host must pass the SSRF guard (``POST /webhooks``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from devtools.stack import BotranksUp

pytestmark = pytest.mark.integration

CONFIG = r"""
[parameters]
"path.strategy_id" = "${ST_STRATEGY_ID}"
"path.key_id" = "${ST_SPARE_KEY_ID}"
"path.webhook_id" = "${ST_WEBHOOK_ID}"

[generation]
allow-x00 = false
codec = "utf-8"

[auth.openapi.apiKey]
bearer = "${ST_API_KEY}"

[auth.openapi.session]
api_key = "${ST_SESSION}"

[[operations]]
include-name-regex = "^POST /api/v1/strategies/\\{strategy_id\\}/(orders|cash|positions/snapshot)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

[[operations]]
include-name-regex = "^GET /api/v1/strategies/\\{strategy_id\\}/(performance|nav)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
include-name-regex = "^GET /api/v1/fx$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "429"]

[[operations]]
# a base_currency of three capitals that is no ISO 4217 code in tender is a 422 naming the field
include-name-regex = "^POST /strategies/?$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "409", "422", "429"]

[[operations]]
# the same for a strategy's settings (and a new base currency with no FX rate for its history: 422 naming it)
include-name-regex = "^PATCH /strategies/\\{strategy_id\\}$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

[[operations]]
# a reserved handle (admin, api, ...) matches the pattern: a 422 naming handle; one another account has: 409
include-name-regex = "^PUT /me/handle$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "409", "422", "429"]

[[operations]]
# a webhook's URL must be http(s) with a host whose every address passes the SSRF guard: else a 422 naming url
include-name-regex = "^POST /webhooks$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "409", "422", "429"]

[[operations]]
include-name-regex = "^GET /p/compare$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "429"]
"""

# CPython 3.11's ast.parse is not safe in two threads at once (python/cpython#106905: "AST constructor
# recursion depth mismatch"); hypothesis parses lambdas' sources to describe strategies and
# schemathesis's workers are threads: one parse at a time (loaded by schemathesis: SCHEMATHESIS_HOOKS)
HOOKS = """
import ast, sys, threading

if sys.version_info < (3, 12):
    _lock, _parse = threading.Lock(), ast.parse

    def parse(*args, **kwargs):
        with _lock:
            return _parse(*args, **kwargs)

    ast.parse = parse
"""


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    # the run sends far more than 60 requests a minute with one key, and signs in more than 30 times
    with BotranksUp(
        tmp_path_factory.mktemp("up"),
        BOTRANKS_RATE_LIMIT_PER_MINUTE="1000000",
        BOTRANKS_AUTH_ATTEMPTS_PER_MINUTE_PER_IP="1000000",
        # the run's webhook is at 127.0.0.1:9, where nothing listens: its test events never leave loopback
        BOTRANKS_WEBHOOKS_ALLOW_PRIVATE="1",
    ) as system:
        yield system


@pytest.fixture(scope="module")
def signed_in(up, tmp_path_factory):
    client = httpx.Client(base_url=up.base, timeout=30)
    email, password = f"st-{uuid.uuid4().hex[:8]}@example.com", "schemathesis-password"
    assert client.post("/auth/register", json={"email": email, "password": password}).status_code == 201
    token = client.post("/auth/login", json={"email": email, "password": password}).cookies["access_token"]
    client.cookies.set("access_token", token)
    sid = client.post("/strategies", json={"name": "fuzzed"}).json()["id"]
    key = client.post(f"/strategies/{sid}/api-keys", json={"name": "st"}).json()["plaintext"]
    spare = client.post(f"/strategies/{sid}/api-keys", json={"name": "revoked by the run"}).json()["id"]
    hook = client.post("/webhooks", json={"url": "http://127.0.0.1:9/schemathesis"}).json()["id"]
    # the strategy's benchmark (SPY) has prices, so /performance answers with its figures
    prices = tmp_path_factory.mktemp("prices") / "spy.csv"
    prices.write_text("symbol,date,close\n" + "".join(f"SPY,2025-03-{d:02d},{500 + d}\n" for d in (3, 4, 5, 6, 7)))
    up.cli("prices", "import", str(prices))
    return {
        "ST_STRATEGY_ID": sid,
        "ST_API_KEY": key,
        "ST_SESSION": token,
        "ST_SPARE_KEY_ID": spare,
        "ST_WEBHOOK_ID": hook,
    }


def test_the_whole_api_against_its_document(up, signed_in, tmp_path: Path):
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    (tmp_path / "st_hooks.py").write_text(HOOKS)
    cmd = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "run",
        f"{up.base}/schema/openapi.json",
        "--checks",
        "all",
        "--exclude-path",
        "/auth/logout",
        "--max-examples",
        os.environ.get("ST_MAX_EXAMPLES", "30"),
        "--seed",
        os.environ.get("ST_SEED", "4207"),
        "--workers",
        "2",
        "--no-color",
        "--request-timeout",
        "20",
    ]
    env = {
        **os.environ,
        **signed_in,
        "SCHEMATHESIS_HOOKS": "st_hooks",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-10000:] + result.stderr[-2000:]
    generated = re.search(r"(\d+) generated", result.stdout)  # "230 generated" contains "0 generated"
    assert generated and int(generated.group(1)) > 0 and " passed" in result.stdout, result.stdout[-3000:]
    # every phase ran (none skipped for want of something to test, none errored)
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}", result.stdout), result.stdout[-3000:]
