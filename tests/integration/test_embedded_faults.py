"""`botranks up` on the embedded servers survives their death, and its NATS needs credentials.

kill -9 of the embedded nats-server, then of the PostgreSQL postmaster, under a steady stream of
orders: the supervisor restarts both on the same address, no request is answered 500, every
acknowledged order is in the log exactly once, the projection catches up by itself, and
/healthz (503 naming what is down meanwhile, each answer within a second) returns to 200. The
postmaster killed once more with nothing writing: the first POST /orders and POST /auth/register
once /healthz is 200 again succeed within a second. Also: deploy/nats.conf's per-service
permissions do what its comments say.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import httpx
import nats
import pytest

from devtools.stack import ROOT, wait_until
from libs.infra import bus
from tools.embedded import nats_server_binary, postmaster_pid
from tools.processes import free_port, pid_alive, wait_for_port

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT", "KO"]


def _read_pids(home: Path) -> dict[str, int]:
    try:
        return json.loads((home / "run" / "pids.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _nats_connect_error(url: str) -> Exception | None:
    async def attempt() -> None:
        nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3)
        await nc.close()

    try:
        asyncio.run(attempt())
    except Exception as exc:  # noqa: BLE001
        return exc
    return None


class Writer(threading.Thread):
    """Posts batches of uniquely identified orders; a batch is retried until it gets a 2xx."""

    ALLOWED = {200, 201, 503}

    def __init__(self, base: str, strategy_id: str, api_key: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {api_key}"})
        self.path = f"/api/v1/strategies/{strategy_id}/orders"
        self.stop_event = threading.Event()
        self.acknowledged: dict[str, dict] = {}  # external_order_id -> order, once a 2xx included it
        self.statuses: Counter = Counter()
        self.bad: list[tuple[int, str]] = []
        self.connect_errors = 0
        self.batches = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def _run(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            orders = []
            for _ in range(5):
                n += 1
                orders.append(
                    {
                        "symbol": SYMBOLS[n % 3],
                        "side": "buy",
                        "quantity": 1 + n % 7,
                        "price": 100 + n % 13,
                        "executed_at": "2026-02-10T15:00:00Z",
                        "external_order_id": f"fault-{n:06d}",
                    }
                )
            self._until_acknowledged(orders)
            self.batches += 1
            time.sleep(0.02)

    def _until_acknowledged(self, orders: list[dict]) -> None:
        # once started, a batch is finished even after stop(): it may already be stored
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                r = self.client.post(self.path, json={"orders": orders})
            except httpx.HTTPError:
                self.connect_errors += 1
                time.sleep(0.2)
                continue
            self.statuses[r.status_code] += 1
            if r.status_code not in self.ALLOWED:
                self.bad.append((r.status_code, r.text[:300]))
            if 200 <= r.status_code < 300:
                body = r.json()
                for row in body["accepted"] + body["duplicates"]:
                    self.acknowledged[row["external_order_id"]] = row
                assert len({o["external_order_id"] for o in orders} - set(self.acknowledged)) == 0, body
                return
            time.sleep(0.2)
        raise AssertionError(f"a batch was never acknowledged: {self.statuses}, last bad {self.bad[-3:]}")

    def stop(self) -> None:
        self.stop_event.set()
        self.join(180)
        assert not self.is_alive(), "the writer did not finish"
        self.client.close()
        if self.error is not None:
            raise self.error


class HealthWatcher(threading.Thread):
    """Polls /healthz and remembers every name it reported down, and when and how fast it answered."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.stop_event = threading.Event()
        self.seen_down: set[str] = set()
        self.bad_bodies: list[str] = []
        self.answers: list[tuple[float, float, int]] = []  # (asked at, seconds, status; 0: no answer)

    def during(self, start: float, end: float) -> list[tuple[float, float, int]]:
        """The answers whose request overlapped [start, end] (one asked just before a kill and answered
        during the outage counts: under load a single poll may span an outage shorter than a second)."""
        return [answer for answer in list(self.answers) if answer[0] <= end and answer[0] + answer[1] >= start]

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self.stop_event.is_set():
                asked = time.monotonic()
                try:
                    r = client.get("/healthz")
                except httpx.HTTPError:
                    self.answers.append((asked, time.monotonic() - asked, 0))
                    continue
                self.answers.append((asked, time.monotonic() - asked, r.status_code))
                if r.status_code == 503:
                    body = r.json()
                    if not isinstance(body.get("down"), list) or not body.get("detail"):
                        self.bad_bodies.append(r.text)
                    self.seen_down.update(body.get("down", []))
                time.sleep(0.05)


def _all_orders(client: httpx.Client, strategy_id: str) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        r = client.get(f"/api/v1/strategies/{strategy_id}/orders", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def _kill_postgres(data_dir: Path, health) -> tuple[float, float, tuple[float, float, int]]:
    """kill -9 the postmaster; when it was killed, when /healthz was 200 again (monotonic), and one
    /healthz asked right after the kill (asked at, seconds, status): the supervisor may have PostgreSQL
    back within a second, between two of the watcher's polls."""
    pg_pid = postmaster_pid(data_dir)
    assert pg_pid and pid_alive(pg_pid)
    killed_at = time.monotonic()
    os.kill(pg_pid, signal.SIGKILL)
    asked = time.monotonic()
    status = health()
    right_after = (asked, time.monotonic() - asked, status)
    wait_until(
        lambda: postmaster_pid(data_dir) not in (None, pg_pid) and pid_alive(postmaster_pid(data_dir)),
        60,
        "the supervisor to restart PostgreSQL",
    )
    wait_until(lambda: health() == 200, 60, "/healthz to be 200 with PostgreSQL back")
    return killed_at, time.monotonic(), right_after


def _register(client: httpx.Client, email: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = client.post("/auth/register", json={"email": email, "password": "a long enough passphrase"})
    return r, time.monotonic() - started


@pytest.fixture
def home():
    """BOTRANKS_HOME, not under pytest's basetemp (mode 0700): run by root, pgserver runs PostgreSQL
    as the user ``pgserver``, who must be able to reach its data directory."""
    base = Path(tempfile.mkdtemp(prefix="botranks-up-"))
    base.chmod(0o711)
    yield base / "home"
    shutil.rmtree(base, ignore_errors=True)


def test_embedded_servers_killed_under_load_come_back_and_lose_nothing(home, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTRANKS_")}
    env.update(
        BOTRANKS_HOME=str(home), BOTRANKS_RATE_LIMIT_PER_MINUTE="1000000", BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0.5"
    )
    port = free_port()
    log_path = tmp_path / "up.log"
    up = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base, timeout=30)
    writer = watcher = None
    password = None

    def health() -> int:
        try:
            return client.get("/healthz", timeout=10).status_code
        except httpx.HTTPError:
            return 0

    try:
        wait_until(lambda: health() == 200, 180, "botranks up to be healthy")
        assert client.get("/readyz").status_code in (200, 404)  # 404: query_api has no /readyz yet

        # --- the embedded NATS requires the generated credentials
        auth_conf = home / "nats" / "auth.conf"
        assert stat.S_IMODE(auth_conf.stat().st_mode) == 0o600
        pids = _read_pids(home)
        nats_pid = pids["nats"]
        argv = _cmdline(nats_pid)
        nats_port = int(argv[argv.index("-p") + 1])
        password = auth_conf.read_text().split('password: "')[1].split('"')[0]
        assert password not in " ".join(argv)  # not on the command line either
        refused = _nats_connect_error(f"nats://127.0.0.1:{nats_port}")
        assert refused is not None and "authorization" in str(refused).lower(), refused
        refused = _nats_connect_error(f"nats://botranks:wrong@127.0.0.1:{nats_port}")
        assert refused is not None and "authorization" in str(refused).lower(), refused
        assert _nats_connect_error(f"nats://botranks:{password}@127.0.0.1:{nats_port}") is None

        created = subprocess.run(
            [sys.executable, "-m", "tools.cli", "strategy", "create", "--name", "faults"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        creds = json.loads(created.stdout.strip().splitlines()[-1])
        sid, key = creds["strategy_id"], creds["api_key"]

        watcher = HealthWatcher(base)
        watcher.start()
        writer = Writer(base, sid, key)
        writer.start()

        def wait_flowing(n: int, what: str) -> None:
            wait_until(lambda: writer.batches >= n or writer.error is not None, 60, what)
            if writer.error is not None:
                raise writer.error

        wait_flowing(10, "orders to flow")

        # --- kill -9 the nats-server: the supervisor starts it again on the same port
        os.kill(nats_pid, signal.SIGKILL)
        wait_until(lambda: _read_pids(home).get("nats") not in (None, nats_pid), 30, "the supervisor to restart nats")
        new_nats = _read_pids(home)["nats"]
        assert pid_alive(new_nats) and int(_cmdline(new_nats)[_cmdline(new_nats).index("-p") + 1]) == nats_port
        wait_for_port(nats_port, 10)
        at = writer.batches
        wait_flowing(at + 10, "orders to flow after the NATS restart")

        # --- kill -9 the postmaster: the supervisor starts PostgreSQL again on the same data dir;
        # meanwhile /healthz says so, each answer within a second
        data_dir = home / "postgres"
        killed_at, healed_at, right_after = _kill_postgres(data_dir, health)
        outage = [*watcher.during(killed_at, healed_at), right_after]
        print(
            f"PostgreSQL down {healed_at - killed_at:.2f} s under load: {len(outage)} /healthz answers, "
            f"slowest {max((a[1] for a in outage), default=0):.3f} s"
        )
        assert any(status == 503 for _, _, status in outage), outage
        assert max(seconds for _, seconds, _ in outage) < 1.0, outage
        at = writer.batches
        wait_flowing(at + 10, "orders to flow after the PostgreSQL restart")
        writer.stop()
        print(
            f"writer: {writer.batches} batches, statuses {dict(writer.statuses)}, "
            f"connection errors {writer.connect_errors}"
        )
        assert not writer.bad, f"answers other than 2xx/503: {writer.bad[:5]} ({writer.statuses})"

        # --- every acknowledged order exactly once, the projection caught up, health back to 200
        acknowledged = writer.acknowledged
        expected = defaultdict(Decimal)
        for order in acknowledged.values():
            expected[order["symbol"]] += Decimal(str(order["quantity"]))
        api = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"})

        def caught_up() -> bool:
            try:
                items = _all_orders(api, sid)
                state = api.get(f"/api/v1/strategies/{sid}/state")
            except (httpx.HTTPError, AssertionError):
                return False
            if state.status_code != 200 or len(items) < len(acknowledged):
                return False
            got = {p["symbol"]: Decimal(str(p["quantity"])) for p in state.json()["positions"]}
            return got == dict(expected)

        wait_until(caught_up, 60, "the projection to catch up by itself")
        ids = Counter(item["external_order_id"] for item in _all_orders(api, sid))
        assert set(ids) == set(acknowledged), (len(ids), len(acknowledged))
        assert all(n == 1 for n in ids.values()), [i for i, n in ids.items() if n > 1][:5]
        api.close()
        wait_until(lambda: health() == 200, 60, "/healthz to return to 200")

        # --- and again with nothing writing: the first writes once /healthz is 200 again (through
        # the base URL) each succeed within a second (the pool's dead connections used to cost 5 s and a 503)
        usual_register_s = sorted(_register(client, f"before{i}@example.com")[1] for i in range(3))[1]
        killed_at, healed_at, right_after = _kill_postgres(data_dir, health)
        started = time.monotonic()
        first = client.post(
            f"/api/v1/strategies/{sid}/orders",
            json={
                "orders": [
                    {
                        "symbol": "AAPL",
                        "side": "buy",
                        "quantity": 1,
                        "price": 100,
                        "executed_at": "2026-02-10T15:00:00Z",
                        "external_order_id": "first-after-restart",
                    }
                ]
            },
            headers={"Authorization": f"Bearer {key}", "BotRanks-Read-Your-Writes": "off"},
        )
        first_s = time.monotonic() - started
        registered, register_s = _register(client, "after.restart@example.com")
        outage = [*watcher.during(killed_at, healed_at), right_after]
        print(
            f"PostgreSQL down {healed_at - killed_at:.2f} s idle: slowest /healthz "
            f"{max((a[1] for a in outage), default=0):.3f} s; first POST /orders {first.status_code} in "
            f"{first_s:.3f} s, POST /auth/register {registered.status_code} in {register_s:.3f} s "
            f"(usually {usual_register_s:.3f} s here)"
        )
        assert max(seconds for _, seconds, _ in outage) < 1.0, outage
        assert first.status_code == 200 and first.json()["counts"] == {"accepted": 1, "duplicates": 0}, first.text
        assert first_s < 1.0
        assert registered.status_code == 201, registered.text
        assert register_s < usual_register_s + 0.7  # argon2's cost (~0.2 s idle) and less than a second
        watcher.stop_event.set()
        watcher.join(15)
        assert not watcher.bad_bodies, watcher.bad_bodies[:3]
        print(f"/healthz reported down: {sorted(watcher.seen_down)}")
        assert {"nats", "postgres"} & watcher.seen_down, watcher.seen_down  # reported while down
    finally:
        if writer is not None and writer.is_alive():
            writer.stop_event.set()
        if watcher is not None:
            watcher.stop_event.set()
        client.close()
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
    log = log_path.read_text()
    assert '"event": "stopped"' in log, log[-3000:]
    assert "embedded_server_restarted" in log and '"server": "nats"' in log and '"server": "postgres"' in log
    assert password and password not in log, "the NATS password was logged"


def test_deploy_nats_conf_gives_each_service_only_what_it_needs(tmp_path):
    passwords = {"relay": "relay-secret", "projector": "projector-secret", "admin": "admin-secret"}
    env = {**os.environ, **{f"BOTRANKS_NATS_{u.upper()}_PASSWORD": p for u, p in passwords.items()}}
    port = free_port()
    conf = (ROOT / "deploy" / "nats.conf").read_text()
    assert "store_dir: /var/lib/nats-server" in conf
    (tmp_path / "nats.conf").write_text(conf.replace("/var/lib/nats-server", str(tmp_path / "js")))
    for included in ("nats-auth.conf",):  # the users, shared with the cluster configuration
        (tmp_path / included).write_text((ROOT / "deploy" / included).read_text())
    server = subprocess.Popen(
        [nats_server_binary(), "-c", str(tmp_path / "nats.conf"), "-a", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = {u: f"nats://{u}:{p}@127.0.0.1:{port}" for u, p in passwords.items()}
    store_id, strategy = "t" + os.urandom(4).hex(), "s1"

    async def scenario() -> None:
        from nats.js.api import AckPolicy, ConsumerConfig

        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        relay = await bus.connect(url["relay"], "relay", error_cb=on_error)
        await bus.ensure_stream(relay, store_id)
        ack = await relay.jetstream().publish(
            bus.subject_for(store_id, 0, strategy), b"{}", headers={"Nats-Msg-Id": bus.message_id(store_id, 1)}
        )
        assert ack.seq == 1
        with pytest.raises(Exception):  # the relay may not consume
            await relay.jetstream().pull_subscribe(
                f"{bus.subject_root(store_id)}.>", durable="x", stream=bus.stream_name(store_id)
            )

        projector = await bus.connect(url["projector"], "projector", error_cb=on_error)
        await bus.ensure_stream(projector, store_id)
        durable = bus.partition_consumer(store_id, 0)
        sub = await projector.jetstream().pull_subscribe(
            bus.partition_subjects(store_id, 0),
            durable=durable,
            stream=bus.stream_name(store_id),
            config=ConsumerConfig(
                durable_name=durable, ack_policy=AckPolicy.EXPLICIT, filter_subject=bus.partition_subjects(store_id, 0)
            ),
        )
        msgs = await sub.fetch(1, timeout=5)
        assert msgs[0].subject == bus.subject_for(store_id, 0, strategy)
        await msgs[0].ack()
        errors.clear()
        with pytest.raises(Exception):  # the projector may not publish events (no ack ever comes)
            await projector.jetstream().publish(bus.subject_for(store_id, 0, strategy), b"{}", timeout=1)
        await projector.flush()
        await asyncio.sleep(0.2)
        assert any("permissions violation" in e.lower() for e in errors), errors

        admin = await bus.connect(url["admin"], "admin")
        info = await admin.jetstream().consumer_info(bus.stream_name(store_id), durable)
        assert info.num_ack_pending == 0 and info.delivered.stream_seq == 1
        for nc in (relay, projector, admin):
            await nc.close()

    try:
        wait_for_port(port)
        assert _nats_connect_error(f"nats://127.0.0.1:{port}") is not None
        assert _nats_connect_error(f"nats://relay:wrong@127.0.0.1:{port}") is not None
        asyncio.run(scenario())
    finally:
        server.terminate()
        server.wait(10)
