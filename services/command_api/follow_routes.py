"""JSON routes of following (issue 24, item 4), for signed-in users: what ``/account/following`` and
``/account/webhooks/{id}`` do, through the same rules (``following``): follow and unfollow a strategy
(public, or one's own; any other is a 404 like an unknown id), the strategies one follows, webhooks
(the signing secret in the answer that creates one only), a webhook's delivery log and its test event.
Deliveries are the notifier's (``services/notifier``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import structlog
from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter

from botranks_domain.accounts import StrategyProfile
from botranks_domain.follows import (
    EVENT_KINDS,
    Delivery,
    FollowedStrategy,
    TestEventQueued,
    Unfollowed,
    Webhook,
    WebhookCreated,
    WebhookDeleted,
    WebhookIn,
)
from libs.infra.follows import Follows
from libs.infra.follows import store as follow_store
from libs.infra.openapi import ACCOUNTS, SESSION_REQUIRED
from libs.infra.web import error_responses

from . import following
from .account_routes import session_guard

log = structlog.get_logger(service="command_api")

#: the most rows one answer of a list holds (and the default ``limit``)
PAGE_MAX = 100
#: the delivery log's default page: the 20 latest, as on the webhook's page
LOG_DEFAULT = 20
MAX_OFFSET = 1_000_000_000
NO_STORE = {"Cache-Control": "no-store"}


def _followed(profile: StrategyProfile, since: datetime) -> FollowedStrategy:
    return FollowedStrategy(profile.id, profile.name, profile.visibility, since, f"/s/{profile.id}/feed.atom")


def _webhook(hook: follow_store.Webhook) -> Webhook:
    return Webhook(hook.id, hook.url, hook.created_at, list(EVENT_KINDS))


def paging_headers(path: str, limit: int, offset: int, total: int) -> dict[str, str]:
    """``X-Total-Count`` and ``Link`` (RFC 8288) to the next and previous pages, as ``GET /strategies``."""
    links = []
    if offset + limit < total:
        links.append(f'<{path}?limit={limit}&offset={offset + limit}>; rel="next"')
    if offset > 0:
        links.append(f'<{path}?limit={limit}&offset={max(0, min(offset, total) - limit)}>; rel="prev"')
    headers = {"X-Total-Count": str(total)}
    if links:
        headers["Link"] = ", ".join(links)
    return headers


Limit = Annotated[int, Parameter(ge=1, le=PAGE_MAX)]
Offset = Annotated[int, Parameter(ge=0, le=MAX_OFFSET)]


class FollowRoutes(Controller):
    path = "/"
    guards = [session_guard]
    tags, security = [ACCOUNTS], SESSION_REQUIRED

    # ------------------------------------------------------------ follows

    @get(
        "/following",
        responses=error_responses(400, 401, 503),
        summary="The strategies the signed-in user follows, newest follow first, a page at a time"
        " (X-Total-Count; Link: next, prev)",
    )
    async def following_list(
        self, request: Request, state: State, limit: Limit = PAGE_MAX, offset: Offset = 0
    ) -> Response[list[FollowedStrategy]]:
        rows, total = await to_thread.run_sync(following.followed, state.db, request.state.user_id, limit, offset)
        headers = paging_headers("/following", limit, offset, total)
        return Response([_followed(p, since) for p, since in rows], headers=headers)

    @post(
        "/following/{strategy_id:uuid}",
        status_code=200,
        responses=error_responses(400, 401, 403, 404, 409, 503),
        summary="Follow a strategy (public, or one's own; idempotent). Its events reach every webhook of"
        " the user from now on; 409 past 1000 follows",
    )
    async def follow(self, request: Request, state: State, strategy_id: UUID) -> FollowedStrategy:
        profile, since = await to_thread.run_sync(following.follow, state.db, request.state.user_id, strategy_id)
        log.info("strategy_followed", strategy_id=str(strategy_id))
        return _followed(profile, since)

    @post(
        "/following/{strategy_id:uuid}/unfollow",
        status_code=200,
        responses=error_responses(400, 401, 403, 503),
        summary="Stop following a strategy (idempotent)",
    )
    async def unfollow(self, request: Request, state: State, strategy_id: UUID) -> Unfollowed:
        await to_thread.run_sync(Follows(state.db.datastore).unfollow, request.state.user_id, strategy_id)
        return Unfollowed(strategy_id)

    # ------------------------------------------------------------ webhooks

    @get(
        "/webhooks",
        responses=error_responses(400, 401, 503),
        summary="The signed-in user's webhooks, oldest first (at most 10; never their secrets)",
    )
    async def webhooks(self, request: Request, state: State) -> list[Webhook]:
        hooks = await to_thread.run_sync(Follows(state.db.datastore).webhooks, request.state.user_id)
        return [_webhook(h) for h in hooks]

    @post(
        "/webhooks",
        status_code=201,
        responses=error_responses(400, 401, 403, 409, 415, 422, 503),
        summary="Register a webhook; the answer holds its signing secret, shown this once. The URL must"
        " pass the SSRF guard (422 naming url); 409 past 10 webhooks",
    )
    async def create_webhook(self, request: Request, state: State, data: WebhookIn) -> Response[WebhookCreated]:
        hook, secret = await to_thread.run_sync(following.create_webhook, state.db, request.state.user_id, data.url)
        log.info("webhook_created", webhook_id=str(hook.id))
        created = WebhookCreated(hook.id, hook.url, hook.created_at, list(EVENT_KINDS), secret)
        return Response(created, status_code=201, headers=NO_STORE)

    @get(
        "/webhooks/{webhook_id:uuid}",
        responses=error_responses(400, 401, 404, 503),
        summary="One of the user's webhooks (another's is 404)",
    )
    async def webhook(self, request: Request, state: State, webhook_id: UUID) -> Webhook:
        hook = await to_thread.run_sync(Follows(state.db.datastore).webhook, request.state.user_id, webhook_id)
        return _webhook(hook)

    @post(
        "/webhooks/{webhook_id:uuid}/delete",
        status_code=200,
        responses=error_responses(400, 401, 403, 404, 503),
        summary="Delete a webhook: nothing more is sent to it, what was pending is dropped",
    )
    async def delete_webhook(self, request: Request, state: State, webhook_id: UUID) -> WebhookDeleted:
        await to_thread.run_sync(Follows(state.db.datastore).delete_webhook, request.state.user_id, webhook_id)
        log.info("webhook_deleted", webhook_id=str(webhook_id))
        return WebhookDeleted(webhook_id)

    @get(
        "/webhooks/{webhook_id:uuid}/deliveries",
        responses=error_responses(400, 401, 404, 503),
        summary="A webhook's delivery log, newest first: each event's state, attempts and last answer"
        " (status, ms, first 500 bytes, error); a page at a time (X-Total-Count; Link: next, prev)",
    )
    async def deliveries(
        self, request: Request, state: State, webhook_id: UUID, limit: Limit = LOG_DEFAULT, offset: Offset = 0
    ) -> Response[list[Delivery]]:
        follows = Follows(state.db.datastore)

        def load() -> tuple[list[Delivery], int]:
            rows = follows.deliveries(request.state.user_id, webhook_id, limit, offset)
            return rows, follows.count_deliveries(webhook_id)

        rows, total = await to_thread.run_sync(load)
        headers = paging_headers(f"/webhooks/{webhook_id}/deliveries", limit, offset, total)
        return Response(rows, headers=headers)

    @post(
        "/webhooks/{webhook_id:uuid}/test",
        status_code=202,
        responses=error_responses(400, 401, 403, 404, 409, 503),
        summary="Send a test event: a ping queued for the notifier, delivered like any event within"
        " seconds (its outcome in the delivery log)",
    )
    async def send_test_event(self, request: Request, state: State, webhook_id: UUID) -> TestEventQueued:
        event_id = await to_thread.run_sync(
            following.send_test_event, state.db, request.state.user_id, webhook_id, state.settings.url
        )
        return TestEventQueued(webhook_id, event_id)
