"""``Follows``: owner of ``follows``, ``webhooks`` and ``webhook_deliveries`` (the notifier's outbox
and delivery log). Nothing else runs SQL on these tables; strategies and users are checked by their
owner (``db.identity``) before a row here names them (foreign keys cascade their deletion)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore

from botranks_domain.errors import Conflict, NotFound
from botranks_domain.follows import Delivery

from ..pg import reading

SECRET_PREFIX = "whsec_"
#: a webhook's undelivered events at most (a receiver that is down for long loses the oldest news)
MAX_PENDING = 1000
MAX_WEBHOOKS = 10
MAX_FOLLOWS = 1000


@dataclass(frozen=True)
class Webhook:
    id: UUID
    user_id: UUID
    url: str
    created_at: datetime


@dataclass(frozen=True)
class Target:
    """A webhook and one strategy its owner follows: what the notifier derives events for."""

    webhook_id: UUID
    user_id: UUID
    strategy_id: UUID
    #: events published before this (the later of the follow and the webhook) are not sent
    since: datetime


@dataclass(frozen=True)
class Due:
    """A delivery to attempt now."""

    id: UUID
    webhook_id: UUID
    url: str
    secret: str
    kind: str
    body: str
    attempts: int
    created_at: datetime


_DELIVERY = (
    "id, event_id, kind, state, attempts, created_at, next_attempt_at, last_attempt_at, last_status, last_ms,"
    " last_response, last_error"
)


class Follows:
    """Who follows what, their webhooks, and the webhooks' deliveries."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    # ------------------------------------------------------------ follows

    def follow(self, user: UUID, strategy_id: UUID) -> None:
        """Idempotent; the caller checked that the user may see the strategy."""
        with self.datastore.transaction(commit=True) as curs:
            count = curs.execute("SELECT count(*) AS n FROM follows WHERE user_id = %s", (user,)).fetchone()
            if count is not None and count["n"] >= MAX_FOLLOWS:
                raise Conflict(f"At most {MAX_FOLLOWS} follows per account: unfollow one first")
            curs.execute(
                "INSERT INTO follows (user_id, strategy_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", (user, strategy_id)
            )

    def followed_since(self, user: UUID, strategy_id: UUID) -> datetime | None:
        """Since when the user follows the strategy (None: not followed)."""
        with reading(self.datastore) as curs:
            row = curs.execute(
                "SELECT created_at FROM follows WHERE user_id = %s AND strategy_id = %s", (user, strategy_id)
            ).fetchone()
        return None if row is None else row["created_at"]

    def unfollow(self, user: UUID, strategy_id: UUID) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("DELETE FROM follows WHERE user_id = %s AND strategy_id = %s", (user, strategy_id))

    def following(self, user: UUID) -> list[tuple[UUID, datetime]]:
        """The strategies the user follows, newest follow first: (strategy id, since)."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT strategy_id, created_at FROM follows WHERE user_id = %s ORDER BY created_at DESC, strategy_id",
                (user,),
            ).fetchall()
        return [(r["strategy_id"], r["created_at"]) for r in rows]

    # ------------------------------------------------------------ webhooks

    def create_webhook(self, user: UUID, url: str) -> tuple[Webhook, str]:
        """A new webhook and its signing secret (the only time the secret leaves here for a page)."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        with self.datastore.transaction(commit=True) as curs:
            count = curs.execute(
                "SELECT count(*) AS n FROM webhooks WHERE user_id = %s AND deleted_at IS NULL", (user,)
            ).fetchone()
            if count is not None and count["n"] >= MAX_WEBHOOKS:
                raise Conflict(f"At most {MAX_WEBHOOKS} webhooks per account: delete one first")
            row = curs.execute(
                "INSERT INTO webhooks (id, user_id, url, secret) VALUES (%s, %s, %s, %s)"
                " RETURNING id, user_id, url, created_at",
                (uuid.uuid4(), user, url, secret),
            ).fetchone()
        assert row is not None
        return Webhook(**row), secret

    def webhooks(self, user: UUID) -> list[Webhook]:
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT id, user_id, url, created_at FROM webhooks WHERE user_id = %s AND deleted_at IS NULL"
                " ORDER BY created_at, id",
                (user,),
            ).fetchall()
        return [Webhook(**r) for r in rows]

    def webhook(self, user: UUID, webhook_id: UUID) -> Webhook:
        """The user's live webhook, or NotFound (another's is not found either)."""
        with reading(self.datastore) as curs:
            row = curs.execute(
                "SELECT id, user_id, url, created_at FROM webhooks WHERE id = %s AND user_id = %s"
                " AND deleted_at IS NULL",
                (webhook_id, user),
            ).fetchone()
        if row is None:
            raise NotFound(f"Webhook {webhook_id} not found")
        return Webhook(**row)

    def delete_webhook(self, user: UUID, webhook_id: UUID) -> None:
        """Soft delete: nothing more is sent; what was pending is dropped."""
        with self.datastore.transaction(commit=True) as curs:
            row = curs.execute(
                "UPDATE webhooks SET deleted_at = coalesce(deleted_at, now())"
                " WHERE id = %s AND user_id = %s RETURNING id",
                (webhook_id, user),
            ).fetchone()
            if row is None:
                raise NotFound(f"Webhook {webhook_id} not found")
            curs.execute(
                "UPDATE webhook_deliveries SET state = 'dropped' WHERE webhook_id = %s AND state = 'pending'",
                (webhook_id,),
            )

    def targets(self) -> list[Target]:
        """Every (live webhook, strategy its owner follows) pair."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT w.id AS webhook_id, w.user_id, f.strategy_id, greatest(w.created_at, f.created_at) AS since"
                " FROM webhooks w JOIN follows f ON f.user_id = w.user_id WHERE w.deleted_at IS NULL"
            ).fetchall()
        return [Target(**r) for r in rows]

    # ------------------------------------------------------------ the outbox

    def enqueue(
        self, webhook_id: UUID, event_id: UUID, strategy_id: UUID | None, kind: str, body: str, cap: int = MAX_PENDING
    ) -> bool:
        """Queue an event for a webhook once (a second time is a no-op); False when already queued or
        the webhook has ``cap`` deliveries pending (the bound of its queue)."""
        with self.datastore.transaction(commit=True) as curs:
            row = curs.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, event_id, strategy_id, kind, body)"
                " SELECT %(id)s, %(w)s, %(e)s, %(s)s, %(k)s, %(b)s"
                " WHERE (SELECT count(*) FROM webhook_deliveries WHERE webhook_id = %(w)s AND state = 'pending')"
                " < %(cap)s"
                " ON CONFLICT (webhook_id, event_id) DO NOTHING RETURNING id",
                {
                    "id": uuid.uuid4(),
                    "w": webhook_id,
                    "e": event_id,
                    "s": strategy_id,
                    "k": kind,
                    "b": body,
                    "cap": cap,
                },
            ).fetchone()
        return row is not None

    def claim(self, limit: int, lease: timedelta) -> list[Due]:
        """Up to ``limit`` due deliveries, leased for ``lease`` (another notifier skips them meanwhile)."""
        with self.datastore.transaction(commit=True) as curs:
            rows = curs.execute(
                "UPDATE webhook_deliveries d SET next_attempt_at = now() + %(lease)s FROM webhooks w"
                " WHERE w.id = d.webhook_id AND d.id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending'"
                " AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT %(n)s FOR UPDATE SKIP LOCKED)"
                " RETURNING d.id, d.webhook_id, w.url, w.secret, d.kind, d.body, d.attempts, d.created_at",
                {"lease": lease, "n": limit},
            ).fetchall()
        return [Due(**r) for r in rows]

    def record(
        self,
        delivery_id: UUID,
        *,
        status: int | None,
        ms: int,
        response: str | None,
        error: str | None,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        """One attempt's outcome: delivered, pending again until ``retry_at``, or failed (no ``retry_at``)."""
        state = "delivered" if delivered else ("pending" if retry_at is not None else "failed")
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "UPDATE webhook_deliveries SET state = %(state)s, attempts = attempts + 1, last_attempt_at = now(),"
                " next_attempt_at = coalesce(%(retry)s, next_attempt_at), last_status = %(status)s, last_ms = %(ms)s,"
                " last_response = %(response)s, last_error = %(error)s WHERE id = %(id)s AND state = 'pending'",
                {
                    "state": state,
                    "retry": retry_at,
                    "status": status,
                    "ms": ms,
                    "response": response,
                    "error": error,
                    "id": delivery_id,
                },
            )

    def deliveries(self, user: UUID, webhook_id: UUID, limit: int = 20, offset: int = 0) -> list[Delivery]:
        """The user's webhook's latest deliveries, newest first (the owner's delivery log; another's
        webhook is NotFound)."""
        self.webhook(user, webhook_id)
        return self.deliveries_of(webhook_id, limit, offset)

    def deliveries_of(self, webhook_id: UUID, limit: int = 20, offset: int = 0) -> list[Delivery]:
        """A webhook's latest deliveries, newest first, whoever owns it."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE webhook_id = %s"
                " ORDER BY created_at DESC, id LIMIT %s OFFSET %s",
                (webhook_id, limit, offset),
            ).fetchall()
        return [Delivery(**r) for r in rows]

    def count_deliveries(self, webhook_id: UUID) -> int:
        """How many rows a webhook's delivery log holds (finished ones are pruned after 7 days)."""
        with reading(self.datastore) as curs:
            row = curs.execute("SELECT count(*) AS n FROM webhook_deliveries WHERE webhook_id = %s", (webhook_id,))
            found = row.fetchone()
        return 0 if found is None else int(found["n"])

    def prune(self, older_than: timedelta) -> int:
        """Forget finished deliveries older than ``older_than`` (the log keeps the recent ones)."""
        with self.datastore.transaction(commit=True) as curs:
            deleted = curs.execute(
                "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < now() - %s", (older_than,)
            )
            return deleted.rowcount
