"""NATS JetStream naming and connection helpers shared by the relay and the projector.

Stream, subject and consumer names carry the event store's ``store_id`` so that a NATS
server that outlives a database never mistakes a new store's notification 1 for an old one.
"""

from __future__ import annotations

import asyncio

import msgspec
import nats
from nats.aio.client import Client
from nats.js.api import RetentionPolicy, StreamConfig
from nats.js.errors import NotFoundError

DUPLICATE_WINDOW_S = 600.0


class Envelope(msgspec.Struct, frozen=True):
    """One notification of the event store, as it travels on the bus."""

    notification_id: int
    originator_id: str
    topic: str
    state: msgspec.Raw


class Notifications(msgspec.Struct, frozen=True):
    """What travels on the bus: one strategy's notifications of one relay batch, in id order (a POST of 500
    orders is one message, not 500: a publish, its ack and its delivery cost the same for one event or many)."""

    notifications: list[Envelope]


#: a message's payload stays below this (NATS refuses more than max_payload, 1 MB by default)
MAX_MESSAGE_BYTES = 256 * 1024


def stream_name(store_id: str) -> str:
    return f"BOTRANKS_{store_id}"


def subject_root(store_id: str) -> str:
    return f"botranks.{store_id}.events"


def subject_for(store_id: str, partition: int, strategy_id: str) -> str:
    """A strategy's events travel on ``<root>.<partition>.<strategy>``: each partition is its own ordered
    stream of work, consumed by its own durable consumer."""
    return f"{subject_root(store_id)}.{partition}.{strategy_id}"


def partition_subjects(store_id: str, partition: int) -> str:
    return f"{subject_root(store_id)}.{partition}.>"


def partition_consumer(store_id: str, partition: int) -> str:
    return f"projector_{store_id}_p{partition}"


def message_id(store_id: str, first: int, last: int | None = None) -> str:
    """The ``Nats-Msg-Id`` of a message carrying notifications ``first``..``last`` (JetStream's dedupe)."""
    return f"{store_id}:{first}" if last is None or last == first else f"{store_id}:{first}-{last}"


FIRST_CONNECT_TIMEOUT_S = 5.0


async def connect(url: str, name: str, **callbacks) -> Client:
    """Connect, or fail within ``FIRST_CONNECT_TIMEOUT_S``; once connected, reconnect without end.

    nats-py retries a first connection forever with unbounded reconnects: bound it, so that a
    caller whose bus is down gets an error it can handle (and a store it can fall back on).
    """
    return await asyncio.wait_for(
        nats.connect(
            servers=[url],
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
            allow_reconnect=True,
            **callbacks,
        ),
        FIRST_CONNECT_TIMEOUT_S,
    )


async def ensure_stream(nc: Client, store_id: str, replicas: int = 1) -> None:
    """The store's stream, created if missing (``replicas``: its copies in a NATS cluster)."""
    js = nc.jetstream()
    name = stream_name(store_id)
    config = StreamConfig(
        name=name,
        subjects=[f"{subject_root(store_id)}.>"],
        retention=RetentionPolicy.LIMITS,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=7 * 24 * 3600.0,
        num_replicas=replicas,
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        try:
            await js.add_stream(config)
        except Exception:  # created concurrently by the other side: fine if it now exists
            await asyncio.sleep(0.1)
            await js.stream_info(name)
