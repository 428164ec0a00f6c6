"""botranks_client against an in-memory fake of the API (httpx.MockTransport): ids, batches,
retries, pacing, errors, pagination, exact decimals, the outbox. Nothing here really sleeps."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from types import MappingProxyType
from uuid import UUID, uuid4, uuid5

import httpx
import msgspec
import pytest

import botranks_client as bc
from botranks_client import (
    AsyncClient,
    BadRequest,
    Client,
    Enqueued,
    Forbidden,
    InvalidInput,
    InvalidOrder,
    NotFound,
    OrderIn,
    RateLimited,
    ServerError,
    SubmitResult,
    TransportError,
    Unauthorized,
    Unprocessable,
    _core,
)
from botranks_client import outbox as outbox_module

STRATEGY = UUID("0b5c7f1e-4a55-4c27-9d0e-0d1f2a3b4c5d")
BASE = "http://botranks.test"
EXACT = msgspec.json.Encoder(decimal_format="number")
T0 = datetime(2026, 4, 20, 14, 31, 22, tzinfo=UTC)


def order(i: int = 0, **extra) -> dict:
    return {"symbol": "AAPL", "side": "buy", "quantity": Decimal("1.5") + i, "price": Decimal("189.42"), **extra}


class FakeApi:
    """Just enough of BotRanks API v1: idempotent ingest by external id, pages, scripted failures."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.orders: dict[str, dict] = {}
        self.cash: dict[str, dict] = {}
        self.snapshots: list[dict] = []
        self.failures: list[object] = []  # consumed one per request: a status, (status, headers), or an exception
        self.headers: dict[str, str] = {}  # sent with every answer
        self.projected = "true"
        self.lock = threading.Lock()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def async_transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            await request.aread()
            return self.handle(request)

        return httpx.MockTransport(handle)

    def posts(self, suffix: str = "/orders") -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST" and r.url.path.endswith(suffix)]

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            if self.failures:
                failure = self.failures.pop(0)
                if isinstance(failure, Exception):
                    raise failure
                status, headers = failure if isinstance(failure, tuple) else (failure, {})
                return httpx.Response(
                    status, json={"detail": f"scripted {status}"}, headers={**self.headers, **headers}
                )
            return self.route(request)

    def route(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer fq_live_test"
        path = request.url.path
        assert path.startswith(f"/api/v1/strategies/{STRATEGY}/"), path
        what = path.rsplit("/", 1)[-1]
        headers = {**self.headers, "BotRanks-Projected": self.projected}
        if request.method == "POST":
            assert request.headers["Content-Type"] == "application/json"
            body = json.loads(request.content, parse_float=Decimal)
        if request.method == "POST" and what == "orders":
            assert 1 <= len(body["orders"]) <= 500
            accepted, duplicates = [], []
            for o in body["orders"]:
                key = o["external_order_id"]
                (duplicates if key in self.orders else accepted).append(self.orders.setdefault(key, self.stored(o)))
            return self.exact(
                200,
                {
                    "accepted": accepted,
                    "duplicates": duplicates,
                    "counts": {"accepted": len(accepted), "duplicates": len(duplicates)},
                },
                headers,
            )
        if request.method == "POST" and what == "cash":
            key = body["external_id"]
            status = "duplicate" if key in self.cash else "created"
            event = self.cash.setdefault(
                key, {**body, "id": str(uuid4()), "strategy_id": str(STRATEGY), "created_at": "2026-04-20T15:00:00Z"}
            )
            return self.exact(201 if status == "created" else 200, {"status": status, "event": event}, headers)
        if request.method == "POST" and what == "snapshot":
            self.snapshots.append(body)
            return self.exact(
                200, {"upserted": len(body["positions"]), "removed": 0, "reconciliation_entries": 0}, headers
            )
        if what == "orders":  # GET: pages of 2 unless ?limit
            items = list(self.orders.values())
            start = int(request.url.params.get("cursor", "0"))
            limit = int(request.url.params.get("limit", "2"))
            page = items[start : start + limit]
            more = start + limit < len(items)
            return self.exact(200, {"items": page, "next_cursor": str(start + limit) if more else None}, headers)
        if what == "state":
            return self.exact(
                200, {"strategy_id": str(STRATEGY), "positions": [], "nav": None, "last_order_at": None}, headers
            )
        return httpx.Response(404, json={"detail": "Not Found"})

    @staticmethod
    def stored(o: dict) -> dict:
        return {
            **o,
            "id": str(uuid5(STRATEGY, o["external_order_id"])),
            "strategy_id": str(STRATEGY),
            "price": o["price"] if o["price"] is not None else Decimal(100),
            "created_at": "2026-04-20T15:00:00Z",
        }

    @staticmethod
    def exact(status: int, body: object, headers: dict[str, str]) -> httpx.Response:
        # decimals as exact JSON numbers, like the real server
        content = EXACT.encode(body)
        return httpx.Response(status, content=content, headers={**headers, "Content-Type": "application/json"})


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(api: FakeApi, sleeps: list[float]):
    with Client(BASE, "fq_live_test", STRATEGY, transport=api.transport(), sleep=sleeps.append) as c:
        yield c


def sent_ids(request: httpx.Request) -> list[str]:
    return [o["external_order_id"] for o in json.loads(request.content)["orders"]]


# ---------------------------------------------------------------- ids and times


def test_the_same_list_twice_sends_the_same_ids_and_doubles_nothing(client, api):
    orders = [order(i) for i in range(3)] + [OrderIn(symbol="MSFT", side="sell", quantity=Decimal(2))]
    first = client.submit_orders(orders)
    assert first.counts == {"accepted": 4, "duplicates": 0}
    # executed_at was filled on the caller's own objects (dict key, struct attribute)
    assert all(isinstance(o["executed_at"], datetime) for o in orders[:3])
    assert isinstance(orders[3].executed_at, datetime)
    again = client.submit_orders(orders)
    assert (again.accepted_count, again.duplicates_count) == (0, 4)
    assert sent_ids(api.posts()[0]) == sent_ids(api.posts()[1])
    assert all(i.startswith("bot-") and len(i) == 36 for i in sent_ids(api.posts()[0]))
    assert len(api.orders) == 4


def test_identical_orders_at_different_positions_get_different_ids(client, api):
    same = order(0, executed_at=T0)
    client.submit_orders([dict(same), dict(same), dict(same)])
    ids = sent_ids(api.posts()[0])
    assert len(set(ids)) == 3
    a, b = order(1, executed_at=T0), order(2, executed_at=T0)
    client.submit_orders([a, b])
    client.submit_orders([b, a])
    first, swapped = sent_ids(api.posts()[1]), sent_ids(api.posts()[2])
    assert first[0] != swapped[1] and first[1] != swapped[0]
    # ... and depend on the strategy too
    other = _core.prepare_orders([order(1, executed_at=T0)], uuid4())
    assert other[0].external_order_id != first[0]


def test_caller_ids_and_times_are_untouched(client, api):
    orders = [order(0, external_order_id="tb-1", executed_at="2026-04-20T14:31:22Z"), order(1)]
    client.submit_orders(orders)
    body = json.loads(api.posts()[0].content)["orders"]
    assert body[0]["external_order_id"] == "tb-1" and body[0]["executed_at"] == "2026-04-20T14:31:22Z"
    assert orders[0]["executed_at"] == "2026-04-20T14:31:22Z"
    assert body[1]["external_order_id"].startswith("bot-")


def test_a_fresh_list_placed_later_is_a_new_order(client, api):
    client.submit_orders([order(0)])
    client.submit_orders([order(0)])  # same content, new object: another fill at another time
    assert len(api.orders) == 2


def test_read_only_mapping_without_time_is_refused_before_sending(client, api):
    with pytest.raises(InvalidOrder) as caught:
        client.submit_orders([order(0), MappingProxyType(order(1))])
    assert caught.value.index == 1 and "executed_at" in caught.value.detail
    assert api.requests == []


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"quantity": Decimal(0)}, "quantity"),
        ({"side": "hold"}, "side"),
        ({"symbol": "not a symbol!"}, "symbol"),
        ({"colour": "red"}, "colour"),
        ({"quantity": Decimal("1e-30")}, "quantity"),
    ],
)
def test_a_bad_order_raises_invalid_order_with_its_index_before_anything_is_sent(client, api, bad, words):
    orders = [order(i) for i in range(700)]
    orders[612] = {**orders[612], **bad}
    with pytest.raises(InvalidOrder) as caught:
        client.submit_orders(orders)
    assert caught.value.index == 612 and words in caught.value.detail
    assert api.requests == []


def test_not_an_order_at_all(client):
    with pytest.raises(InvalidOrder, match=r"orders\[0\]"):
        client.submit_orders([("AAPL", "buy", 1)])


# ---------------------------------------------------------------- batches


def test_long_lists_go_in_batches_of_500_in_order(client, api):
    orders = [order(i) for i in range(1201)]
    result = client.submit_orders(orders)
    posts = api.posts()
    assert [len(json.loads(p.content)["orders"]) for p in posts] == [500, 500, 201]
    ids = [i for p in posts for i in sent_ids(p)]
    assert len(set(ids)) == 1201
    assert [o.external_order_id for o in result.accepted] == ids
    assert [o.quantity for o in result.accepted] == [Decimal("1.5") + i for i in range(1201)]


def test_batches_stay_under_the_body_limit(client, api):
    details = {"note": "x" * 15_000}
    client.submit_orders([order(i, details=details) for i in range(150)])
    posts = api.posts()
    assert len(posts) > 2 and all(len(p.content) <= 1024 * 1024 for p in posts)
    assert sum(len(json.loads(p.content)["orders"]) for p in posts) == 150


def test_an_empty_list_sends_nothing(client, api):
    assert client.submit_orders([]) == SubmitResult()
    assert api.requests == []


def test_an_error_mid_way_carries_what_went_through(api, sleeps):
    with Client(BASE, "fq_live_test", STRATEGY, transport=api.transport(), sleep=sleeps.append, max_retries=1) as c:
        orders = [order(i) for i in range(1000)]
        original = api.route

        def second_batch_fails(request):
            if len(api.posts()) >= 2:
                return httpx.Response(503, json={"detail": "down"})
            return original(request)

        api.route = second_batch_fails
        with pytest.raises(ServerError) as caught:
            c.submit_orders(orders)
        assert caught.value.partial.accepted_count == 500
        api.route = original
        again = c.submit_orders(orders)  # the same list: the first half comes back as duplicates
        assert (again.accepted_count, again.duplicates_count) == (500, 500)
        assert len(api.orders) == 1000


# ---------------------------------------------------------------- retries


def test_503_and_connection_resets_are_retried_until_success(client, api, sleeps):
    api.failures = [
        503,
        httpx.ReadError("connection reset by peer"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        502,
    ]
    result = client.submit_orders([order(0)])
    assert result.accepted_count == 1
    assert len(api.posts()) == 6 and len(sleeps) == 5
    for attempt, slept in enumerate(sleeps):  # full jitter under an exponential ceiling
        assert 0 <= slept <= min(_core.BACKOFF_CAP_S, _core.BACKOFF_BASE_S * 2**attempt)


def test_retry_after_is_honoured_in_seconds_and_as_a_date(client, api, sleeps):
    when = datetime.now(UTC) + timedelta(seconds=30)
    api.failures = [(429, {"Retry-After": "7"}), (503, {"Retry-After": format_datetime(when, usegmt=True)})]
    client.submit_orders([order(0)])
    assert sleeps[0] == 7
    assert 27 <= sleeps[1] <= 30


def test_the_ceiling_of_the_backoff_is_capped():
    assert all(_core.backoff(a) <= _core.BACKOFF_CAP_S for a in range(40))
    assert _core.parse_retry_after("nonsense") is None
    assert _core.parse_retry_after("-5") == 0
    assert _core.parse_retry_after("999999") == _core.RETRY_AFTER_CAP_S


def test_retries_give_up_with_a_typed_error(api, sleeps):
    with Client(BASE, "fq_live_test", STRATEGY, transport=api.transport(), sleep=sleeps.append, max_retries=2) as c:
        api.failures = [503] * 3
        with pytest.raises(ServerError) as caught:
            c.state()
        assert caught.value.status == 503 and caught.value.detail == "scripted 503"
        api.failures = [(429, {"Retry-After": "1"})] * 3
        with pytest.raises(RateLimited) as limited:
            c.state()
        assert limited.value.status == 429
        api.failures = [httpx.ConnectError("refused")] * 3
        with pytest.raises(TransportError):
            c.state()
    assert len(api.requests) == 9


@pytest.mark.parametrize(
    "status, error",
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (422, Unprocessable),
        (413, bc.ApiError),
    ],
)
def test_4xx_is_a_typed_error_with_its_detail_and_never_retried(client, api, sleeps, status, error):
    api.failures = [status]
    with pytest.raises(error) as caught:
        client.submit_orders([order(0)])
    assert caught.value.status == status and caught.value.detail == f"scripted {status}"
    assert caught.value.response.status_code == status
    assert len(api.requests) == 1 and sleeps == []


def test_pacing_waits_for_the_window_instead_of_hitting_429(client, api, sleeps):
    api.headers = {"RateLimit-Limit": "60", "RateLimit-Remaining": "0", "RateLimit-Reset": "12"}
    client.state()
    assert sleeps == []  # the answer that spent the window is not waited for
    api.headers = {"RateLimit-Limit": "60", "RateLimit-Remaining": "59", "RateLimit-Reset": "60"}
    client.state()
    assert len(sleeps) == 1 and sleeps[0] == pytest.approx(12, abs=0.5)
    assert client.rate_limit == {"limit": 60, "remaining": 59, "reset": 60}
    client.state()  # the window had room again: no wait
    assert len(sleeps) == 1


# ---------------------------------------------------------------- reads


def test_orders_follow_the_cursor_lazily(client, api):
    client.submit_orders([order(i, executed_at=T0) for i in range(5)])
    posted = len(api.requests)
    iterator = client.orders()
    assert len(api.requests) == posted  # nothing asked yet
    first = next(iterator)
    assert isinstance(first, bc.Order) and len(api.requests) == posted + 1
    rest = list(iterator)
    assert [o.quantity for o in [first, *rest]] == [Decimal("1.5") + i for i in range(5)]
    cursors = [r.url.params.get("cursor") for r in api.requests[posted:]]
    assert cursors == [None, "2", "4"]
    assert len(list(client.orders(limit=10))) == 5
    assert api.requests[-1].url.params["limit"] == "10"


def test_read_parameters(api, sleeps):
    seen: list[httpx.Request] = []

    def handle(request):
        seen.append(request)
        return httpx.Response(400, json={"detail": "just looking"})

    with Client(BASE + "/api/v1/", "fq_live_test", STRATEGY, transport=httpx.MockTransport(handle)) as c:
        for call in (
            lambda: c.nav(from_=datetime(2026, 1, 1).date(), to=datetime(2026, 2, 1).date()),
            lambda: c.performance(benchmark="", risk_free_rate=Decimal("0.045")),
            lambda: c.performance(risk_free_rate=0.045),
            lambda: c.performance(),
        ):
            with pytest.raises(BadRequest):
                call()
    assert str(seen[0].url).endswith(f"/api/v1/strategies/{STRATEGY}/nav?from=2026-01-01&to=2026-02-01")
    assert dict(seen[1].url.params) == {"benchmark": "", "risk_free_rate": "0.045"}
    assert dict(seen[2].url.params) == {"risk_free_rate": "0.045"}
    assert dict(seen[3].url.params) == {}


# ---------------------------------------------------------------- exact decimals


def test_decimals_are_exact_on_the_wire_and_back(client, api):
    orders = [
        order(0, quantity=Decimal("0.1"), price=Decimal("90071992547409.93"), fees=Decimal("0.000000000000000001"))
    ]
    result = client.submit_orders(orders)
    raw = api.posts()[0].content
    assert b'"quantity":0.1,' in raw and b'"price":90071992547409.93,' in raw and b'"fees":1E-18' in raw
    accepted = result.accepted[0]
    assert accepted.quantity == Decimal("0.1") and str(accepted.quantity) == "0.1"
    assert str(accepted.price) == "90071992547409.93"
    assert accepted.fees == Decimal("1E-18")
    cash = client.record_cash("deposit", Decimal("1000000.01"))
    assert b'"amount":1000000.01' in api.posts("/cash")[0].content
    assert cash.event.amount == Decimal("1000000.01")


# ---------------------------------------------------------------- cash and snapshots


def test_cash_ids_are_derived_and_a_failed_call_repeated_reuses_them(client, api, sleeps):
    api.failures = [503] * 9  # the first call gives up (8 retries): outcome unknown
    with pytest.raises(ServerError):
        client.record_cash("deposit", Decimal(1000))
    first_id = json.loads(api.posts("/cash")[0].content)["external_id"]
    created = client.record_cash("deposit", Decimal(1000))  # the retry: same time, same id
    assert created.status == "created" and created.event.external_id == first_id
    later = client.record_cash("deposit", Decimal(1000))  # a new call after a success: a new deposit
    assert later.status == "created" and later.event.external_id != first_id
    explicit = client.record_cash("dividend", "12.5", occurred_at=T0, related_symbol="aapl", note="q1")
    again = client.record_cash("dividend", "12.5", occurred_at=T0, related_symbol="aapl", note="q1")
    assert (explicit.status, again.status) == ("created", "duplicate")
    assert again.event.related_symbol == "AAPL"
    mine = client.record_cash("fee", "-1", external_id="fee-1")
    assert mine.event.external_id == "fee-1"


def test_bad_cash_and_snapshots_are_refused_locally(client, api):
    with pytest.raises(InvalidInput):
        client.record_cash("deposit", Decimal(-5))
    with pytest.raises(InvalidInput):
        client.record_cash("bonus", Decimal(5))
    with pytest.raises(InvalidInput):
        client.snapshot_positions([{"symbol": "AAPL", "quantity": 1, "cost_basis": 0}])
    assert api.requests == []


def test_snapshot_fixes_taken_at_before_sending(client, api):
    outcome = client.snapshot_positions(
        [{"symbol": "aapl", "quantity": Decimal(100), "cost_basis": "189.42"}], log_deltas=True
    )
    assert outcome == bc.SnapshotOutcome(1, 0, 0)
    body = api.snapshots[0]
    assert body["log_deltas"] is True and body["taken_at"] and body["positions"][0]["symbol"] == "AAPL"
    assert body["positions"][0]["cost_basis"] == Decimal("189.42")


def test_read_your_writes_waits_for_the_projection_after_an_unprojected_write(api, sleeps):
    lags = [3, 1, 0]
    original = api.route

    def route(request):
        if request.url.path == "/readyz":
            return httpx.Response(200, json={"status": "ok", "services": {"query_api": {"projector_lag": lags.pop(0)}}})
        return original(request)

    api.route = route
    api.projected = "false"
    with Client(
        BASE, "fq_live_test", STRATEGY, transport=api.transport(), sleep=sleeps.append, read_your_writes=True
    ) as c:
        assert c.submit_orders([order(0)]).projected is False
        c.state()
        assert [r.url.path for r in api.requests].count("/readyz") == 3
        c.state()  # caught up: no more waiting
        assert [r.url.path for r in api.requests].count("/readyz") == 3


# ---------------------------------------------------------------- async


def test_async_client_same_rules(api):
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def scenario() -> None:
        async with AsyncClient(BASE, "fq_live_test", STRATEGY, transport=api.async_transport(), sleep=fake_sleep) as c:
            orders = [order(i) for i in range(501)]
            api.failures = [(503, {"Retry-After": "3"}), httpx.ReadError("reset")]
            first = await c.submit_orders(orders)
            again = await c.submit_orders(orders)
            assert (first.accepted_count, again.duplicates_count) == (501, 501)
            seen = [o.external_order_id async for o in c.orders(limit=200)]
            assert len(seen) == 501 == len(set(seen))
            assert (await c.state()).strategy_id == STRATEGY
            assert (await c.record_cash("deposit", "10")).status == "created"
            api.failures = [422]
            with pytest.raises(Unprocessable):
                await c.state()
            with pytest.raises(InvalidOrder):
                await c.submit_orders([{"symbol": "AAPL"}])

    asyncio.run(scenario())
    assert sleeps[0] == 3 and len(sleeps) == 2


# ---------------------------------------------------------------- outbox


def test_outbox_returns_at_once_and_flushes_in_order(api, sleeps, tmp_path):
    path = tmp_path / "outbox.sqlite"
    with Client(BASE, "fq_live_test", STRATEGY, transport=api.transport(), sleep=sleeps.append, outbox=path) as c:
        orders = [order(i) for i in range(1100)]
        enqueued = c.submit_orders(orders)
        assert isinstance(enqueued, Enqueued) and enqueued.items == 1100 and len(enqueued.ids) == 3
        cash = c.record_cash("deposit", Decimal(5))
        singles = [c.submit_orders([order(i)]) for i in range(3)]
        c.flush(timeout=10)
        assert c.pending() == 0 and len(api.orders) == 1103 and len(api.cash) == 1
        kinds = [r.url.path.rsplit("/", 1)[-1] for r in api.requests if r.method == "POST"]
        assert kinds == ["orders", "orders", "orders", "cash", "orders"]  # the three single orders: one batch
        assert isinstance(cash, Enqueued) and cash.ids[0] < singles[0].ids[0]
        assert c.submit_orders(orders).items == 1100  # the same list again: duplicates only
        c.flush(timeout=10)
    assert len(api.orders) == 1103


def test_outbox_dead_letters_a_refused_row_and_moves_on(api, sleeps, tmp_path):
    original = api.route

    def refuse_msft(request):
        if request.method == "POST" and b"MSFT" in request.content:
            return httpx.Response(422, json={"detail": "orders[0].price: no market data"})
        return original(request)

    api.route = refuse_msft
    with Client(
        BASE, "fq_live_test", STRATEGY, transport=api.transport(), sleep=sleeps.append, outbox=tmp_path / "o.sqlite"
    ) as c:
        c.submit_orders([order(0)])
        c.submit_orders([order(1, symbol="MSFT")])  # merged with its neighbours at first, then isolated
        c.submit_orders([order(2)])
        c.flush(timeout=10)
        dead = c.dead_letters()
        assert len(dead) == 1 and dead[0].status == 422 and "no market data" in dead[0].detail
        assert dead[0].payload()["orders"][0]["symbol"] == "MSFT"
        assert dead[0].payload()["orders"][0]["quantity"] == Decimal("2.5")
        assert sorted(o["quantity"] for o in api.orders.values()) == [Decimal("1.5"), Decimal("3.5")]


def test_outbox_keeps_rows_through_failures_and_a_restart(api, tmp_path, monkeypatch):
    monkeypatch.setattr(outbox_module, "FAILURE_BACKOFF_CAP_S", 0.01)
    path = tmp_path / "o.sqlite"
    api.failures = [401]
    c = Client(BASE, "fq_live_test", STRATEGY, transport=api.transport(), sleep=lambda s: None, outbox=path)
    c.submit_orders([order(0, executed_at=T0)])
    with pytest.raises(Unauthorized):  # every row would fail alike: the queue stops and says why
        c.flush(timeout=10)
    c.close(flush_timeout=0)
    assert api.orders == {}
    api.failures = [503, httpx.ReadError("reset")]
    with Client(
        BASE, "fq_live_test", STRATEGY, transport=api.transport(), sleep=lambda s: None, outbox=path, max_retries=0
    ) as again:  # resumes at start; transient failures only delay
        again.flush(timeout=10)
        assert again.dead_letters() == []
    assert len(api.orders) == 1


def test_outbox_flush_timeout(tmp_path):
    gate = threading.Event()

    def handle(request):
        gate.wait(5)
        return httpx.Response(503, json={"detail": "down"})

    c = Client(
        BASE,
        "fq_live_test",
        STRATEGY,
        transport=httpx.MockTransport(handle),
        sleep=lambda s: None,
        outbox=tmp_path / "o.sqlite",
        max_retries=0,
    )
    c.submit_orders([order(0)])
    with pytest.raises(bc.OutboxTimeout) as caught:
        c.flush(timeout=0.2)
    assert caught.value.remaining == 1
    gate.set()
    c.close(flush_timeout=0.1)


@pytest.mark.parametrize("ryw, header", [(None, None), (True, None), (False, "off")])
def test_read_your_writes_false_asks_the_server_to_answer_at_commit(ryw, header):
    api = FakeApi()
    with Client(BASE, "fq_live_test", STRATEGY, transport=api.transport(), read_your_writes=ryw) as client:
        client.submit_orders([order(0, executed_at=T0)])
    (post,) = api.posts()
    assert post.headers.get("BotRanks-Read-Your-Writes") == header


def test_async_read_your_writes_false_sends_the_header_too():
    api = FakeApi()

    async def run() -> None:
        async with AsyncClient(
            BASE, "fq_live_test", STRATEGY, transport=api.async_transport(), read_your_writes=False
        ) as client:
            await client.submit_orders([order(0, executed_at=T0)])

    asyncio.run(run())
    assert api.posts()[0].headers["BotRanks-Read-Your-Writes"] == "off"
