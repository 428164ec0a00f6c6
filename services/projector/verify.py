"""``botranks verify``: recompute every strategy's hash chain from the event store and compare it
with the one the projector published (``rm_chain``).

The event store is streamed in notification order up to the projector's position (what it
has not projected yet is counted, not checked); each event is routed to its strategy as the
projector routes it and chained the same way (:func:`botranks_domain.chain.digest` over the stored
JSON). A quarantined strategy's chain stops where its projection stopped, so for those a
prefix is expected. Anything else — a changed event, a missing or extra link, a link of
another strategy — is a mismatch, reported with the strategy, seq and notification id.
"""

from __future__ import annotations

from collections import deque
from typing import Any
from uuid import UUID

from botranks_domain.chain import digest, to_hex
from botranks_domain.model import stored_event_strategy
from libs.infra.db import Database

BATCH = 5000


def verify_chains(db: Database, strategy_id: UUID | None = None, batch: int = BATCH) -> dict[str, Any]:
    """The verification summary (``ok`` False when some chain does not follow from the event store)."""
    position = db.projection.position()
    halted = db.ledger.quarantined()
    heads: dict[UUID, tuple[int, bytes]] = {}
    stopped: set[UUID] = set()  # quarantined strategies past the end of their published chain
    mismatches: dict[UUID, dict[str, Any]] = {}
    events = 0

    def fail(sid: UUID, seq: int, notification_id: int, reason: str, **more: Any) -> None:
        if sid not in mismatches:
            mismatches[sid] = {
                "strategy_id": str(sid),
                "seq": seq,
                "notification_id": notification_id,
                "reason": reason,
                **more,
            }

    last = 0
    while True:
        notifications = db.events.notifications_after(last, batch, stop=position)
        upto = notifications[-1].id if notifications else position
        published = db.ledger.chain_links(last, upto, strategy_id)
        stored_ids = {n.id for n in notifications}
        orphans = deque(sorted(nid for nid in published if nid not in stored_ids))
        for n in notifications:
            while orphans and orphans[0] < n.id:  # in notification order with the rest
                nid = orphans.popleft()
                fail(published[nid][0], published[nid][1], nid, "published link without an event in the event store")
            sid = stored_event_strategy(n.state)
            link = published.pop(n.id, None)
            if sid is None or (strategy_id is not None and sid != strategy_id):
                if link is not None:
                    fail(link[0], link[1], n.id, "the stored event no longer names this strategy")
                continue
            seq, previous = heads.get(sid, (0, None))
            expected = digest(previous, n.state)
            heads[sid] = (seq + 1, expected)
            events += 1
            if sid in mismatches:
                continue
            if link is None:
                if sid in halted:
                    stopped.add(sid)
                else:
                    fail(sid, seq + 1, n.id, "event missing from the published chain")
            elif sid in stopped:
                fail(sid, link[1], n.id, "chained after an event the chain skipped")
            elif link[0] != sid:
                fail(sid, seq + 1, n.id, f"published under strategy {link[0]}")
            elif link[1] != seq + 1:
                fail(sid, seq + 1, n.id, f"published as seq {link[1]}")
            elif link[2] != expected:
                fail(
                    sid,
                    seq + 1,
                    n.id,
                    "digest differs: the stored event (or the chain) was changed",
                    expected=to_hex(expected),
                    published=to_hex(link[2]),
                )
        for nid in orphans:
            fail(published[nid][0], published[nid][1], nid, "published link without an event in the event store")
        if not notifications:
            break
        last = upto
    first = min(mismatches.values(), key=lambda m: m["notification_id"]) if mismatches else None
    return {
        "ok": not mismatches,
        "strategies": len(heads),
        "events": events,
        "projected_up_to": position,
        "unprojected_events": max(0, db.events.max_notification_id() - position),
        "quarantined": sorted(str(s) for s in stopped),
        "mismatching_strategies": len(mismatches),
        "first_mismatch": first,
    }
