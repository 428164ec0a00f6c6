"""The JSON shapes of following (issue 24, item 4): the strategies a signed-in user follows, their
webhooks (the signing secret in the answer that creates one, and never again), each webhook's
delivery log and its test event."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

#: what every webhook receives (a webhook gets every kind; ``ping`` is its test event)
EVENT_KINDS = ("order", "drawdown_record", "new_high", "inactive", "ping")

WebhookUrl = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=2000,
        description="where deliveries are POSTed: https:// or http://, with a host and no user name or password;"
        " refused (422 naming `url`) when the host is or resolves to a loopback, link-local, private, CGNAT,"
        " multicast, unspecified or reserved address, unless the operator sets BOTRANKS_WEBHOOKS_ALLOW_PRIVATE=1,"
        " and always when it is a cloud metadata address (checked at registration and at every delivery)",
    ),
]


class FollowedStrategy(msgspec.Struct):
    """A strategy the user follows, since when, and its Atom feed."""

    strategy_id: UUID
    name: str
    visibility: str
    since: datetime
    feed: str


class Unfollowed(msgspec.Struct):
    strategy_id: UUID
    status: str = "unfollowed"


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True):
    url: WebhookUrl


class Webhook(msgspec.Struct):
    id: UUID
    url: str
    created_at: datetime
    #: the kinds of event it receives (every webhook receives them all)
    events: list[str]


class WebhookCreated(msgspec.Struct):
    """A new webhook and its signing secret: this answer is the only time the secret is shown."""

    id: UUID
    url: str
    created_at: datetime
    events: list[str]
    secret: str
    signature: str = (
        "BotRanks-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f'{t}.{raw body}')>;"
        " refuse a t more than 300 s from your clock"
    )
    warning: str = "Store this secret now; it cannot be retrieved later."


class WebhookDeleted(msgspec.Struct):
    id: UUID
    status: str = "deleted"


class Delivery(msgspec.Struct):
    """A row of a webhook's delivery log: an event, its state and its last attempt's answer."""

    id: UUID
    event_id: UUID
    kind: str
    #: pending (to be tried, or retried at ``next_attempt_at``), delivered, failed (gave up after
    #: 24 h) or dropped (the webhook was deleted first)
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_ms: int | None
    #: the first 500 bytes of the last answer
    last_response: str | None
    last_error: str | None


class TestEventQueued(msgspec.Struct):
    """A ``ping`` queued for the notifier, which delivers it like any event (within seconds)."""

    webhook_id: UUID
    event_id: UUID
    kind: str = "ping"
    state: str = "pending"
