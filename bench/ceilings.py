"""What this machine's PostgreSQL and NATS JetStream can do at best, with nothing of BotRanks in
between: the ceilings the end-to-end figures are compared with.

    python bench/ceilings.py [--rows 200000] [--messages 100000]

Throughput (each from one client, as the services use them):

- PostgreSQL ``COPY`` of order-sized rows into a scratch copy of the event store's table (the
  same columns, primary key and unique notification id; each row's ``state`` is a real encoded
  ``OrderRecorded`` event, ~375 bytes): rows/s, one transaction.
- PostgreSQL ``executemany`` of 500-row batches into the same table, one transaction per batch,
  pipelined and ``RETURNING notification_id``, as the event store's recorder appends: rows/s.
- JetStream pipelined publish to a scratch stream: batches of the relay's size all in flight,
  then all acks, each message a relay envelope with its ``Nats-Msg-Id``: msg/s.
- JetStream pull + ack: a durable pull consumer fetching the projector's batch size and acking
  every message: msg/s.

Latency floors (one round trip at a time, one connection), for the latency figures:

- PostgreSQL one-row ``INSERT`` + ``COMMIT`` (a durable write), and a point ``SELECT`` by primary key;
- JetStream hop: publish one message, fetch it from a pull consumer, ack it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import fresh_database, percentile_ms, servers  # noqa: E402
from botranks_domain.model import Order, OrderRecorded, encode_event, event_topic  # noqa: E402
from libs.infra import bus  # noqa: E402
from services.projector.consumer import FETCH_BATCH  # noqa: E402
from services.relay.relay import BATCH as RELAY_BATCH  # noqa: E402

SCRATCH = "bench_scratch_events"
INSERT_BATCH = 500


@dataclass
class Ceilings:
    pg_copy_rows_s: float
    pg_executemany_rows_s: float
    js_publish_msg_s: float
    js_pull_ack_msg_s: float
    pg_commit_ms: tuple[float, float]  # p50, p99 of a one-row INSERT + COMMIT
    pg_commit_tx_s: float  # one connection, back to back
    pg_select_ms: tuple[float, float]  # p50, p99 of a point SELECT
    pg_select_qps: float
    js_hop_ms: tuple[float, float]  # p50, p99 of publish -> fetch -> ack


def order_state() -> tuple[str, bytes]:
    """The topic and stored bytes of a realistic order event."""
    now = datetime.now(UTC)
    order = Order(
        id=uuid.uuid4(),
        strategy_id=uuid.uuid4(),
        symbol="AAPL",
        side="buy",
        quantity=Decimal(5),
        price=Decimal("123.45"),
        fees=Decimal("0.5"),
        order_type="market",
        status="filled",
        executed_at=now,
        created_at=now,
        external_order_id="b12-345",
        details=None,
    )
    event = OrderRecorded(order)
    return event_topic(event), encode_event(event)


# ---------------------------------------------------------------- PostgreSQL


def _scratch_table(conn: psycopg.Connection) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
    conn.execute(
        f"CREATE TABLE {SCRATCH} (originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
        " topic text, state bytea, notification_id bigserial,"
        " PRIMARY KEY (originator_id, originator_version))"
    )
    conn.execute(f"CREATE UNIQUE INDEX ON {SCRATCH} (notification_id)")


def pg_copy(url: str, rows: int) -> float:
    """rows/s of one ``COPY`` of ``rows`` order-sized rows (one transaction; the text is built first,
    so the client's own per-row work is not counted)."""
    topic, state = order_state()
    tail = f"\t1\t{topic}\t\\\\x{state.hex()}\n".encode()
    data = b"".join(str(uuid.uuid4()).encode() + tail for _ in range(rows))
    with psycopg.connect(url, autocommit=True) as conn:
        _scratch_table(conn)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as curs:
            with curs.copy(f"COPY {SCRATCH} (originator_id, originator_version, topic, state) FROM STDIN") as copy:
                for first in range(0, len(data), 1 << 20):
                    copy.write(data[first : first + (1 << 20)])
        elapsed = time.perf_counter() - started
        assert conn.execute(f"SELECT count(*) FROM {SCRATCH}").fetchone()[0] == rows
        return rows / elapsed


def pg_executemany(url: str, rows: int) -> float:
    """rows/s of 500-row pipelined ``executemany`` batches, one transaction each."""
    topic, state = order_state()
    sql = (
        f"INSERT INTO {SCRATCH} (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)"
        " RETURNING notification_id"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        _scratch_table(conn)
        batches = [[(uuid.uuid4(), 1, topic, state) for _ in range(INSERT_BATCH)] for _ in range(rows // INSERT_BATCH)]
        started = time.perf_counter()
        for batch in batches:
            with conn.pipeline(), conn.transaction(), conn.cursor() as curs:
                curs.execute(f"LOCK TABLE {SCRATCH} IN EXCLUSIVE MODE")  # as the event store serializes appends
                curs.executemany(sql, batch, returning=True)
        elapsed = time.perf_counter() - started
        conn.execute(f"DROP TABLE {SCRATCH}")
        return rows // INSERT_BATCH * INSERT_BATCH / elapsed


def pg_round_trips(url: str, seconds: float) -> tuple[list[float], list[float]]:
    """Latencies of one-row INSERT + COMMIT, then of a point SELECT, each for ``seconds / 2``."""
    topic, state = order_state()
    commits, selects = [], []
    with psycopg.connect(url, autocommit=True) as conn:
        _scratch_table(conn)
        end = time.perf_counter() + seconds / 2
        while time.perf_counter() < end:
            t = time.perf_counter()
            conn.execute(
                f"INSERT INTO {SCRATCH} (originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)",
                (uuid.uuid4(), topic, state),
                prepare=True,
            )
            commits.append(time.perf_counter() - t)
        ids = [r[0] for r in conn.execute(f"SELECT originator_id FROM {SCRATCH} LIMIT 1000").fetchall()]
        end = time.perf_counter() + seconds / 2
        i = 0
        while time.perf_counter() < end:
            t = time.perf_counter()
            conn.execute(
                f"SELECT state FROM {SCRATCH} WHERE originator_id = %s AND originator_version = 1",
                (ids[i % len(ids)],),
                prepare=True,
            ).fetchone()
            selects.append(time.perf_counter() - t)
            i += 1
        conn.execute(f"DROP TABLE {SCRATCH}")
    return commits, selects


# ---------------------------------------------------------------- JetStream


async def jetstream(nats_url: str, messages: int, hop_seconds: float) -> tuple[float, float, list[float]]:
    """(publish msg/s, pull + ack msg/s, hop latencies) on a scratch stream, deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    stream, root = f"BENCH_CEILING_{tag}", f"bench.{tag}"
    topic, state = order_state()
    nc = await bus.connect(nats_url, "botranks-bench-ceilings")
    js = nc.jetstream()
    try:
        await js.add_stream(name=stream, subjects=[f"{root}.>"], duplicate_window=bus.DUPLICATE_WINDOW_S)
        started = time.perf_counter()
        for first in range(0, messages, RELAY_BATCH):
            await asyncio.gather(
                *(
                    js.publish(
                        f"{root}.{n % 16}.{uuid.uuid4()}",
                        msgspec.json.encode(
                            bus.Envelope(
                                notification_id=n,
                                originator_id=str(uuid.uuid4()),
                                topic=topic,
                                state=msgspec.Raw(state),
                            )
                        ),
                        headers={"Nats-Msg-Id": f"{tag}:{n}"},
                        timeout=10,
                    )
                    for n in range(first, min(messages, first + RELAY_BATCH))
                )
            )
        publish = messages / (time.perf_counter() - started)

        sub = await js.pull_subscribe(f"{root}.>", durable=f"bench_{tag}", stream=stream)
        got = 0
        started = time.perf_counter()
        while got < messages:
            msgs = await sub.fetch(FETCH_BATCH, timeout=5)
            await asyncio.gather(*(m.ack() for m in msgs))
            got += len(msgs)
        pull = got / (time.perf_counter() - started)

        hop_sub = await js.pull_subscribe(f"{root}.hop", durable=f"bench_hop_{tag}", stream=stream)
        hops: list[float] = []
        end = time.perf_counter() + hop_seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            await js.publish(f"{root}.hop", state)
            (msg,) = await hop_sub.fetch(1, timeout=5)
            await msg.ack()
            hops.append(time.perf_counter() - t)
        return publish, pull, hops
    finally:
        try:
            await js.delete_stream(stream)
        finally:
            await nc.close()


def measure(url: str, nats_url: str, rows: int, messages: int, floor_seconds: float = 4.0) -> Ceilings:
    """Every ceiling and floor, on the database ``url`` (a scratch table, dropped) and a scratch stream."""
    copy = pg_copy(url, rows)
    many = pg_executemany(url, rows // 2)
    commits, selects = pg_round_trips(url, floor_seconds)
    publish, pull, hops = asyncio.run(jetstream(nats_url, messages, floor_seconds / 2))
    return Ceilings(
        pg_copy_rows_s=copy,
        pg_executemany_rows_s=many,
        js_publish_msg_s=publish,
        js_pull_ack_msg_s=pull,
        pg_commit_ms=(percentile_ms(commits, 0.5), percentile_ms(commits, 0.99)),
        pg_commit_tx_s=len(commits) / sum(commits),
        pg_select_ms=(percentile_ms(selects, 0.5), percentile_ms(selects, 0.99)),
        pg_select_qps=len(selects) / sum(selects),
        js_hop_ms=(percentile_ms(hops, 0.5), percentile_ms(hops, 0.99)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows for COPY (half of them for executemany)")
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    _, nats_url = servers()
    with fresh_database("botranks_bench_ceilings") as url:
        for name, value in vars(measure(url, nats_url, args.rows, args.messages)).items():
            print(f"{name:<24} {value}")


if __name__ == "__main__":
    main()
