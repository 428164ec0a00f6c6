"""Verifiable history: each strategy's events as a hash chain (pure; no I/O).

A strategy's events are chained in arrival order (the event store's notification order):
``digest_n = sha256(digest_{n-1} || event_json_n)``, with nothing before the first event's
JSON. ``event_json`` is the event exactly as the event store keeps it (its bytes, verbatim).
A back-dated event is appended like any other: the chain never rewrites, so a digest
someone noted earlier stays a prefix of every later chain.

The download (``LedgerReader.chain_events``) is JSONL, one event per line, ``event`` last and
verbatim::

    {"seq":1,"notification_id":17,"digest":"<hex>","event":{...the stored event...}}

:func:`verify_lines` recomputes such a download; docs/NOTES.md ("Verifiable history") has the
same check as a ten-line script for anyone to run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

#: what every line of a download starts with, up to the verbatim event
EVENT_KEY = b'"event":'


def digest(previous: bytes | None, event_json: bytes) -> bytes:
    """The chain's digest after ``event_json``, given the previous digest (None: the first event)."""
    return hashlib.sha256((previous or b"") + event_json).digest()


def to_hex(value: bytes) -> str:
    return value.hex()


def from_hex(text: str) -> bytes:
    return bytes.fromhex(text)


@dataclass(frozen=True, slots=True)
class Link:
    """One event's place in its strategy's chain."""

    seq: int  # 1 for the first event
    notification_id: int
    digest: bytes
    day: date  # UTC date of its arrival, never before the previous link's day
    created_at: datetime


def extend(head: Link | None, events: Iterable[tuple[int, datetime, bytes]]) -> list[Link]:
    """The links that ``events`` (notification id, arrival time, stored JSON), in arrival order, add after ``head``."""
    links: list[Link] = []
    for notification_id, created_at, event_json in events:
        day = created_at.astimezone(UTC).date()
        if head is not None and head.day > day:
            day = head.day  # an arrival clock that went backwards never re-opens a published day
        head = Link(
            (head.seq if head else 0) + 1,
            notification_id,
            digest(head.digest if head else None, event_json),
            day,
            created_at,
        )
        links.append(head)
    return links


def line(link: Link, event_json: bytes) -> bytes:
    """One line of a JSONL download (newline included)."""
    return (
        b'{"seq":%d,"notification_id":%d,"digest":"%s",'
        % (link.seq, link.notification_id, to_hex(link.digest).encode())
        + EVENT_KEY
        + event_json
        + b"}\n"
    )


class ChainMismatch(ValueError):
    """A download whose digests do not follow from its events."""

    def __init__(self, seq: int, detail: str) -> None:
        super().__init__(f"seq {seq}: {detail}")
        self.seq = seq


def verify_lines(lines: Iterable[bytes | str]) -> tuple[int, str | None]:
    """Recompute a JSONL download; returns (events, head digest hex), or raises :class:`ChainMismatch`."""
    previous: bytes | None = None
    count = 0
    for raw in lines:
        data = raw.encode() if isinstance(raw, str) else raw
        data = data.rstrip(b"\r\n")
        if not data.strip():
            continue
        count += 1
        fields = json.loads(data)  # well-formed, and its seq/digest
        start = data.find(EVENT_KEY)
        if start < 0 or not data.endswith(b"}"):
            raise ChainMismatch(count, "no event")
        event_json = data[start + len(EVENT_KEY) : -1]
        if fields.get("seq") != count:
            raise ChainMismatch(count, f"expected seq {count}, found {fields.get('seq')}")
        previous = digest(previous, event_json)
        if fields.get("digest") != to_hex(previous):
            raise ChainMismatch(count, f"digest {fields.get('digest')} does not follow (expected {to_hex(previous)})")
    return count, None if previous is None else to_hex(previous)
