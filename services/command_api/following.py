"""Following: the rules both the owner pages (``pages/follows.py``) and the JSON API
(``follow_routes.py``) apply, written once. The rows are ``libs.infra.follows``'s; deliveries are the
notifier's (``services/notifier``).

- A strategy may be followed when its page may be seen: public, or the user's own; any other id is
  the same 404 as an unknown one (no existence leak). Unfollowing is idempotent.
- A webhook's URL passes the SSRF guard at registration (``guard.destination``: http(s), no
  credentials, the host resolved once and every address global) under the operator's
  ``BOTRANKS_WEBHOOKS_ALLOW_PRIVATE``; the notifier checks it again at every delivery (DNS answers
  change). A refusal is a 422 naming ``url``.
- Limits per account: ``MAX_FOLLOWS`` follows, ``MAX_WEBHOOKS`` live webhooks (409 past them).
- Another user's webhook is a 404, like an unknown one.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from botranks_domain.accounts import StrategyProfile
from botranks_domain.errors import Conflict, NotFound, RuleBroken
from libs.infra.db import Database
from libs.infra.follows import Follows
from libs.infra.follows.events import ping_event
from libs.infra.follows.guard import Refused, Resolver, allow_private, destination, system_resolver
from libs.infra.follows.store import MAX_PENDING, Webhook


def visible(db: Database, user: UUID, strategy_id: UUID) -> StrategyProfile:
    """The strategy if the user may see its page (public, or theirs), else NotFound."""
    profile = db.identity.profile(strategy_id)
    if profile is None or (profile.visibility != "public" and profile.owner_id != user):
        raise NotFound(f"Strategy {strategy_id} not found")
    return profile


def follow(db: Database, user: UUID, strategy_id: UUID) -> tuple[StrategyProfile, datetime]:
    """Follow (idempotent): the strategy and since when the user follows it."""
    profile = visible(db, user, strategy_id)
    follows = Follows(db.datastore)
    follows.follow(user, strategy_id)
    since = follows.followed_since(user, strategy_id)
    if since is None:  # unfollowed in between
        raise NotFound(f"Strategy {strategy_id} not followed")
    return profile, since


def is_following(db: Database, user: UUID, strategy_id: UUID) -> bool:
    return Follows(db.datastore).followed_since(user, strategy_id) is not None


def followed(
    db: Database, user: UUID, limit: int | None = None, offset: int = 0
) -> tuple[list[tuple[StrategyProfile, datetime]], int]:
    """The strategies the user follows, newest follow first (``limit``/``offset``: one page of them),
    each with since when, and how many the user follows in all."""
    every = Follows(db.datastore).following(user)
    page = every[offset : None if limit is None else offset + limit]
    shown = []
    for strategy_id, since in page:
        profile = db.identity.profile(strategy_id)
        if profile is not None:
            shown.append((profile, since))
    return shown, len(every)


def checked_url(url: str, resolver: Resolver = system_resolver, private: bool | None = None) -> str:
    """The URL, stripped, if a webhook may be registered at it; RuleBroken (422) naming ``url`` if not.
    ``private``: the operator's setting (default: ``BOTRANKS_WEBHOOKS_ALLOW_PRIVATE`` of this process)."""
    url = url.strip()
    try:
        destination(url, resolver, allow_private() if private is None else private)
    except Refused as exc:
        raise RuleBroken(f"`url`: {exc}") from None
    return url


def create_webhook(db: Database, user: UUID, url: str, resolver: Resolver = system_resolver) -> tuple[Webhook, str]:
    """A new webhook at a checked URL and its signing secret (to be shown this once)."""
    return Follows(db.datastore).create_webhook(user, checked_url(url, resolver))


def send_test_event(db: Database, user: UUID, webhook_id: UUID, site: str) -> UUID:
    """Queue a ``ping`` for the notifier to deliver like any event; its event id."""
    follows = Follows(db.datastore)
    follows.webhook(user, webhook_id)
    event_id, body = ping_event(webhook_id, site)
    if not follows.enqueue(webhook_id, event_id, None, "ping", body):
        raise Conflict(f"Webhook {webhook_id} has {MAX_PENDING} deliveries pending: nothing more is queued for now")
    return event_id
