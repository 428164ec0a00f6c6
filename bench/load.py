"""The load of bench/run_all.py: functions that run in their own (spawned) processes and drive the
services over loopback HTTP with the lean client of bench/common.py.

Each returns plain data (latencies in seconds, counts, errors, its own CPU seconds), so that the
orchestrator can merge several load processes. ``accounts`` are ``(strategy_id, api_key)`` pairs;
a strategy is written by one connection of one process only, so each strategy's orders arrive
in time order (the live case: no back-dated re-derivation).
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from bench.common import HttpClient, checked, closed_loop, open_loop, run_async

SYMBOLS = (("AAPL", 150.25), ("MSFT", 280.5), ("KO", 60.1), ("JPM", 130.75), ("XOM", 85.4))
GIVE_UP_S = 60.0  # a lag sample still not visible after this long is counted as the time waited


class _Counts(msgspec.Struct):
    accepted: int
    duplicates: int


class _OrdersAnswer(msgspec.Struct):
    counts: _Counts


class _StateAnswer(msgspec.Struct):
    last_order_at: datetime | None = None


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def order(n: int, executed_at: float, tag: str) -> dict[str, Any]:
    """The ``n``-th order of a strategy in a phase (priced: no price lookup)."""
    symbol, price = SYMBOLS[n % len(SYMBOLS)]
    return {
        "symbol": symbol,
        "side": "sell" if n % 3 == 0 else "buy",
        "quantity": 1 + n % 7,
        "price": price + n % 13 / 100,
        "fees": 0.5,
        "executed_at": _iso(executed_at),
        "external_order_id": f"{tag}-{n}",
    }


# ---------------------------------------------------------------- writes


def ingest(
    command_base: str,
    accounts: list[tuple[str, str]],
    per_post: int,
    connections: int,
    seconds: float,
    start_at: float,
    tag: str,
    first_ts: float,
) -> dict[str, Any]:
    """Closed loop: ``connections`` clients, each posting ``per_post``-order batches back to back,
    round-robin over its own share of ``accounts``; each strategy's orders are one second apart from
    ``first_ts`` (epoch seconds) on. Counts the orders acknowledged as accepted."""
    client = HttpClient.for_base(command_base)
    shares = [accounts[w::connections] for w in range(connections)]
    sent = {sid: 0 for sid, _ in accounts}
    not_projected = 0

    async def step(w: int, n: int) -> int:
        nonlocal not_projected
        sid, key = shares[w][n % len(shares[w])]
        first = sent[sid]
        sent[sid] += per_post
        body = msgspec.json.encode({"orders": [order(first + j, first_ts + first + j, tag) for j in range(per_post)]})
        status, headers, answer = await client.request(
            "POST", f"/api/v1/strategies/{sid}/orders", body, {"Content-Type": "application/json", **_auth(key)}
        )
        if status != 200:
            raise RuntimeError(f"POST orders: {status} {answer[:200]!r}")
        not_projected += headers.get("botranks-projected") == "false"
        return msgspec.json.decode(answer, type=_OrdersAnswer).counts.accepted

    async def main() -> dict[str, Any]:
        try:
            return await closed_loop(connections, seconds, step, start_at)
        finally:
            client.close()

    return {**run_async(main()), "not_projected": not_projected}


def lag(
    command_base: str,
    query_base: str,
    accounts: list[tuple[str, str]],
    rate: float,
    per_post: int,
    seconds: float,
    sample_every: int,
    poll_s: float,
    start_at: float,
    tag: str,
    first_ts: float,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Open loop: ``rate`` orders a second as POSTs of ``per_post`` orders, round-robin over
    ``accounts``. For every ``sample_every``-th POST, from its 2xx on, GET /state every ``poll_s``
    (or every 5 % of the time waited so far, if longer; 25 % after a second: the polls must not load
    query_api) until ``last_order_at`` reaches its last order's ``executed_at``: the time from the 2xx
    to the answer that shows it is its lag (a sample still not visible after ``GIVE_UP_S`` counts
    as the time waited, and as ``censored``). ``headers``: added to every POST."""
    command, query = HttpClient.for_base(command_base), HttpClient.for_base(query_base)
    sent: dict[str, int] = {}
    posts_per_s = rate / per_post
    series: list[tuple[int, float]] = []  # (POST number, lag): how the lag evolves during the phase
    polls = censored = 0

    async def make(i: int) -> dict[str, float]:
        nonlocal polls, censored
        sid, key = accounts[i % len(accounts)]
        first = sent.get(sid, 0)
        sent[sid] = first + per_post
        executed = [first_ts + (i + j / per_post) / posts_per_s for j in range(per_post)]  # increasing per strategy
        body = msgspec.json.encode({"orders": [order(first + j, ts, tag) for j, ts in enumerate(executed)]})
        t = time.perf_counter()
        post_headers = {**_auth(key), **(headers or {})}
        await checked(command.post(f"/api/v1/strategies/{sid}/orders", body, post_headers), "POST orders")
        acked = time.perf_counter()
        out = {"POST": acked - t}
        if i % sample_every:
            return out
        wanted = datetime.fromisoformat(_iso(executed[-1]))
        while True:
            state = msgspec.json.decode(
                await checked(query.get(f"/api/v1/strategies/{sid}/state", _auth(key)), "GET state"), type=_StateAnswer
            )
            seen = time.perf_counter()
            polls += 1
            if state.last_order_at is not None and state.last_order_at >= wanted:
                series.append((i, seen - acked))
                return {**out, "lag": seen - acked}
            waited = seen - acked
            if waited > GIVE_UP_S:  # counted as the time waited: the percentiles become lower bounds
                censored += 1
                series.append((i, waited))
                return {**out, "lag": waited}
            # a long lag is polled less often: 5 % resolution up to 1 s, 25 % beyond
            await asyncio.sleep(max(poll_s, waited * (0.05 if waited < 1 else 0.25)))

    async def main() -> dict[str, Any]:
        try:
            return await open_loop(posts_per_s, seconds, make, start_at)
        finally:
            command.close()
            query.close()

    return {**run_async(main()), "lag_series": series, "polls": polls, "censored": censored}


# ---------------------------------------------------------------- reads


def reads_closed(
    query_base: str, paths: list[tuple[str, str]], connections: int, seconds: float, start_at: float, seed: int
) -> dict[str, Any]:
    """Closed loop: ``connections`` clients GETting random ``(path, api_key)`` back to back."""
    client = HttpClient.for_base(query_base)
    rng = random.Random(seed)

    async def step(w: int, n: int) -> int:
        path, key = paths[rng.randrange(len(paths))]
        await checked(client.get(path, _auth(key) if key else None), path)
        return 1

    async def main() -> dict[str, Any]:
        try:
            return await closed_loop(connections, seconds, step, start_at)
        finally:
            client.close()

    return run_async(main())


def get_each(query_base: str, paths: list[tuple[str, str]], connections: int) -> None:
    """GET every ``(path, api_key)`` once (a warm-up), ``connections`` at a time."""
    client = HttpClient.for_base(query_base)
    todo = list(paths)

    async def worker() -> None:
        while todo:
            path, key = todo.pop()
            await checked(client.get(path, _auth(key)), path, timeout=60)

    async def main() -> None:
        try:
            await asyncio.gather(*(worker() for _ in range(connections)))
        finally:
            client.close()

    run_async(main())


def reads_open(
    query_base: str, paths: list[tuple[str, str]], rate: float, seconds: float, start_at: float, seed: int
) -> dict[str, Any]:
    """Open loop: GET a random ``(path, api_key)`` ``rate`` times a second."""
    client = HttpClient.for_base(query_base)
    rng = random.Random(seed)
    order_ = [paths[rng.randrange(len(paths))] for _ in range(int(rate * seconds) + 1)]

    async def make(i: int) -> dict[str, float]:
        path, key = order_[i]
        t = time.perf_counter()
        await checked(client.get(path, _auth(key) if key else None), path)
        return {"GET": time.perf_counter() - t}

    async def main() -> dict[str, Any]:
        try:
            return await open_loop(rate, seconds, make, start_at)
        finally:
            client.close()

    return run_async(main())


def first_ts_of(day: str) -> float:
    """Epoch seconds of 00:00 UTC of ``day`` (YYYY-MM-DD)."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
