"""What a follower is told about a strategy: the events the Atom feed lists and the webhooks deliver,
derived from the read models on demand (nothing is stored for the feed).

- ``order``: an order as the strategy's publication rule allows it (``live``: as it arrives;
  ``delayed``: once it was executed more than 24 h ago, i.e. before the page's cut-off, and has arrived;
  ``none``: never);
- ``drawdown_record``: a NAV day whose drawdown of the growth index is a new all-time low;
- ``new_high``: a NAV day whose growth index is a new all-time high after a drawdown of at least
  ``RECOVERY_DEPTH`` since the previous high;
- ``inactive``: ``INACTIVE_AFTER`` without activity since the board's last activity (which the
  leaderboard shows anyway, so it is public under every rule).

Every event has a stable id (an order's own UUID, or a name-based UUID of strategy, kind and day):
the feed's entry ids and the webhooks' dedup key.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from botranks_domain.nav import NavRow
from botranks_domain.series import daily_series, nav_frame

#: the namespace of the name-based ids of derived events (never changed: the ids are public)
NAMESPACE = UUID("6c0f3b1e-5a8e-4b8e-9f2a-24f0110b0a24")
RECOVERY_DEPTH = -0.10
INACTIVE_AFTER = timedelta(days=30)
MAX_EVENTS = 50
DELAY = timedelta(hours=24)
KINDS = ("order", "drawdown_record", "new_high", "inactive")


@dataclass(frozen=True)
class FollowEvent:
    """One thing that happened to a strategy, as a follower may learn it."""

    id: UUID
    kind: str
    strategy_id: UUID
    #: when it happened (an order's execution, the NAV day's start, the day inactivity began)
    at: datetime
    #: from when the publication rule lets it be seen (webhooks deliver what was published after a follow)
    published_at: datetime
    title: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def urn(self) -> str:
        return f"urn:uuid:{self.id}"

    def payload(self) -> dict[str, Any]:
        """The JSON body of a webhook delivery (and of nothing else)."""
        return {
            "id": str(self.id),
            "type": self.kind,
            "strategy_id": str(self.strategy_id),
            "at": self.at.isoformat(),
            "title": self.title,
            "data": self.data,
        }


def derived_id(strategy_id: UUID, kind: str, key: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"{strategy_id}/{kind}/{key}")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def nav_events(strategy_id: UUID, rows: list[NavRow]) -> list[FollowEvent]:
    """Drawdown records and new highs after a deep drawdown, oldest first (pure)."""
    if len(rows) < 2:
        return []
    out = daily_series(nav_frame(rows), 2).select("date", "index", "drawdown").collect(engine="in-memory")
    events: list[FollowEvent] = []
    worst, peak, deepest = 0.0, None, 0.0
    for day, index, dd in zip(out["date"].to_list(), out["index"].to_list(), out["drawdown"].to_list(), strict=True):
        if index is None or dd is None or not (math.isfinite(index) and math.isfinite(dd)):
            continue
        when = _day_start(day)
        published = min(when + timedelta(days=1), datetime.now(UTC))
        if dd < worst - 1e-12:
            worst = dd
            events.append(
                FollowEvent(
                    derived_id(strategy_id, "drawdown_record", day.isoformat()),
                    "drawdown_record",
                    strategy_id,
                    when,
                    published,
                    f"New drawdown record: {-dd * 100:.2f} % below its high",
                    {"date": day.isoformat(), "drawdown": round(dd, 6)},
                )
            )
        if peak is None or index > peak * (1 + 1e-12):
            if peak is not None and deepest <= RECOVERY_DEPTH:
                events.append(
                    FollowEvent(
                        derived_id(strategy_id, "new_high", day.isoformat()),
                        "new_high",
                        strategy_id,
                        when,
                        published,
                        f"New equity high after a {-deepest * 100:.2f} % drawdown",
                        {
                            "date": day.isoformat(),
                            "growth_index": round(index, 6),
                            "drawdown_recovered": round(deepest, 6),
                        },
                    )
                )
            peak, deepest = index, 0.0
        else:
            deepest = min(deepest, dd)
    return events


def order_event(order: Any, publication: str) -> FollowEvent:
    """An order as its feed entry (``delayed``: seen from 24 h after its execution, once it has arrived)."""
    arrived = order.created_at
    side = str(getattr(order.side, "value", order.side))
    return FollowEvent(
        order.id,
        "order",
        order.strategy_id,
        order.executed_at,
        max(arrived, order.executed_at + DELAY) if publication == "delayed" else arrived,
        f"{side.upper()} {order.quantity} {order.symbol} at {order.price}",
        {
            "order_id": str(order.id),
            "symbol": order.symbol,
            "side": side,
            "quantity": str(order.quantity),
            "price": str(order.price),
            "executed_at": order.executed_at.isoformat(),
        },
    )


def inactivity_event(strategy_id: UUID, last_activity: datetime | None, now: datetime) -> FollowEvent | None:
    """The strategy has done nothing for ``INACTIVE_AFTER`` (None: it has, or it never did anything)."""
    if last_activity is None or now - last_activity < INACTIVE_AFTER:
        return None
    began = last_activity + INACTIVE_AFTER
    return FollowEvent(
        derived_id(strategy_id, "inactive", last_activity.isoformat()),
        "inactive",
        strategy_id,
        began,
        began,
        f"No activity for {INACTIVE_AFTER.days} days",
        {"last_activity": last_activity.isoformat()},
    )


def newest(events: list[FollowEvent], limit: int = MAX_EVENTS) -> list[FollowEvent]:
    """The ``limit`` newest, newest first (ties: by id, so the order is stable)."""
    return sorted(events, key=lambda e: (e.at, str(e.id)), reverse=True)[:limit]


def derive(
    db: Any, strategy_id: UUID, publication: str, cutoff: datetime | None, now: datetime, limit: int = MAX_EVENTS
) -> list[FollowEvent]:
    """The strategy's newest ``limit`` events under ``publication`` (``cutoff``: the delayed rule's),
    from the read models (``db``: a ``libs.infra.db.Database``): its NAV series, its recent orders and
    its board row. Bounded: at most ``limit`` orders are read."""
    events = nav_events(strategy_id, db.ledger.nav_series(strategy_id).series)
    if publication in ("live", "delayed"):
        orders = db.ledger.recent_orders(strategy_id, limit, cutoff if publication == "delayed" else None)
        events.extend(order_event(o, publication) for o in getattr(orders, "items", orders))
    row = db.ledger.leaderboard_row(strategy_id)
    idle = inactivity_event(strategy_id, row.last_activity if row else None, now)
    if idle is not None:
        events.append(idle)
    return newest(events, limit)


def body_of(event: FollowEvent, site: str) -> str:
    """A webhook delivery's body: the event, and the strategy page's URL under ``site``."""
    return json.dumps({**event.payload(), "url": f"{site}/s/{event.strategy_id}"}, separators=(",", ":"))


def ping_event(webhook_id: UUID, site: str) -> tuple[UUID, str]:
    """A ``ping`` event (the owner page's "send test event"): its id and body."""
    event_id = uuid.uuid4()
    at = datetime.now(UTC).isoformat()
    body = {"id": str(event_id), "type": "ping", "webhook_id": str(webhook_id), "at": at, "url": site}
    return event_id, json.dumps(body, separators=(",", ":"))
