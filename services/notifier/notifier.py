"""The notifier: fills the webhooks' outbox (``webhook_deliveries``) from the same event derivation
as the Atom feed (``libs.infra.follows.events``) and delivers it, in a process of its own so that no
receiver, however slow or hostile, holds up ingest or projection.

- Scan (every ``scan_s``): for every (live webhook, followed strategy) pair, the strategy's events as
  its publication rule lets the follower see them (its owner: everything; a private strategy: only
  its owner), derived again only when its NAV version or the hour moved; each event published after
  the pair's ``since`` (the later of the follow and the webhook) is queued once (``(webhook, event)``
  is unique), at most ``MAX_PENDING`` pending a webhook.
- Deliver: due rows are leased (another notifier skips them) and posted by a bounded pool of
  threads (``workers``; no more are claimed than there are free threads), each attempt with one
  deadline (5 s); a failure is retried with exponential backoff (``backoff``) until 24 h after the
  event was queued, then marked failed. Every attempt's status, time and first 500 bytes are kept
  (the owner page's delivery log).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog

from libs.infra.db import Database
from libs.infra.follows import Follows
from libs.infra.follows.delivery import TIMEOUT_S, Outcome, deliver
from libs.infra.follows.events import FollowEvent, body_of, derive
from libs.infra.follows.guard import Resolver, system_resolver
from libs.infra.follows.store import Due

log = structlog.get_logger(service="notifier")

RETRY_FOR = timedelta(hours=24)
FIRST_RETRY_S = 10.0
MAX_RETRY_S = 3600.0
KEEP_LOG = timedelta(days=7)
LEASE = timedelta(seconds=TIMEOUT_S * 6)
DELAY = timedelta(hours=24)


def backoff(attempts: int, jitter: float = 0.1) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 10 s, 20 s, 40 s … at most 1 h."""
    base = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(0, attempts - 1))
    return base * (1 + random.uniform(0, jitter))


def retry_at(due: Due, now: datetime, first_retry_s: float = FIRST_RETRY_S) -> datetime | None:
    """When to try again after this failed attempt, or None (24 h after it was queued: give up)."""
    wait = backoff(due.attempts + 1) * first_retry_s / FIRST_RETRY_S
    when = now + timedelta(seconds=wait)
    return when if when <= due.created_at + RETRY_FOR else None


class Notifier:
    """Scan and deliver (see the module doc); ``resolver`` and ``allow_private``: the SSRF guard's."""

    def __init__(
        self,
        db: Database,
        site: str,
        *,
        resolver: Resolver = system_resolver,
        allow_private: bool = False,
        workers: int = 16,
        scan_s: float = 5.0,
        timeout_s: float = TIMEOUT_S,
        first_retry_s: float = FIRST_RETRY_S,
    ) -> None:
        self.db, self.site = db, site.rstrip("/")
        self.follows = Follows(db.datastore)
        self.resolver, self.allow_private = resolver, allow_private
        self.workers, self.scan_s, self.timeout_s, self.first_retry_s = workers, scan_s, timeout_s, first_retry_s
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver")
        self.in_flight: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._seen: dict[UUID, Any] = {}

    # ------------------------------------------------------------ scan

    def scan(self, now: datetime | None = None) -> int:
        """Queue what is new for every pair; returns how many deliveries were queued."""
        now = now or datetime.now(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        by_strategy: dict[UUID, list[Any]] = {}
        for target in self.follows.targets():
            by_strategy.setdefault(target.strategy_id, []).append(target)
        queued = 0
        for sid, targets in by_strategy.items():
            profile = self.db.identity.profile(sid)
            if profile is None:
                continue
            version = (self.db.ledger.nav_version(sid), hour, profile.visibility, profile.show_positions)
            pairs = frozenset((t.webhook_id, t.since) for t in targets)
            if self._seen.get(sid) == (version, pairs):
                continue  # nothing new can be published: same NAV, same hour, same followers
            cache: dict[str, list[FollowEvent]] = {}
            for target in targets:
                publication = self._publication(profile, target.user_id)
                if publication is None:
                    continue
                if publication not in cache:
                    cutoff = hour - DELAY if publication == "delayed" else None
                    cache[publication] = derive(self.db, sid, publication, cutoff, now)
                for event in cache[publication]:
                    if target.since <= event.published_at <= now:
                        kind, body = event.kind, body_of(event, self.site)
                        queued += self.follows.enqueue(target.webhook_id, event.id, sid, kind, body)
            self._seen[sid] = (version, pairs)
        return queued

    @staticmethod
    def _publication(profile: Any, user: UUID) -> str | None:
        if profile.owner_id == user:
            return "live"
        if profile.visibility != "public":
            return None
        show = profile.show_positions or "none"
        return show if show in ("live", "delayed") else "none"

    # ------------------------------------------------------------ deliver

    def deliver_due(self) -> int:
        """Claim as many due deliveries as there are free threads and start them; returns how many."""
        with self._lock:
            self.in_flight = {f for f in self.in_flight if not f.done()}
            free = self.workers - len(self.in_flight)
        if free <= 0:
            return 0
        claimed = self.follows.claim(free, LEASE)
        for due in claimed:
            future = self.pool.submit(self.attempt, due)
            with self._lock:
                self.in_flight.add(future)
        return len(claimed)

    def attempt(self, due: Due) -> Outcome:
        """One attempt of one delivery, recorded."""
        outcome = deliver(
            due.url,
            due.secret,
            due.body.encode(),
            kind=due.kind,
            delivery_id=due.id,
            resolver=self.resolver,
            allow_private=self.allow_private,
            timeout_s=self.timeout_s,
        )
        now = datetime.now(UTC)
        again = None if outcome.delivered else retry_at(due, now, self.first_retry_s)
        self.follows.record(
            due.id,
            status=outcome.status,
            ms=outcome.ms,
            response=outcome.response,
            error=outcome.error,
            delivered=outcome.delivered,
            retry_at=again,
        )
        log.info(
            "webhook_attempt",
            delivery_id=str(due.id),
            webhook_id=str(due.webhook_id),
            kind=due.kind,
            status=outcome.status,
            ms=outcome.ms,
            error=outcome.error,
            retry_at=again.isoformat() if again else None,
        )
        return outcome

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for the attempts in flight (tests)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if all(f.done() for f in self.in_flight):
                    return
            time.sleep(0.01)

    # ------------------------------------------------------------ the loop

    def run(self, stop: Callable[[], bool], tick_s: float = 0.25) -> None:
        """Until ``stop()``: scan every ``scan_s``, deliver what is due, prune the log hourly."""
        next_scan = next_prune = 0.0
        while not stop():
            now = time.monotonic()
            try:
                if now >= next_scan:
                    queued = self.scan()
                    if queued:
                        log.info("webhook_events_queued", count=queued)
                    next_scan = now + self.scan_s
                if now >= next_prune:
                    self.follows.prune(KEEP_LOG)
                    next_prune = now + 3600
                started = self.deliver_due()
            except Exception:  # the database away for a moment: try again on the next tick
                log.exception("notifier_tick_failed")
                started = 0
            if not started:
                time.sleep(tick_s)
        self.pool.shutdown(wait=False, cancel_futures=True)
