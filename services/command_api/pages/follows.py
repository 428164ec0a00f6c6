"""Following: the strategies a signed-in user follows, their webhooks (a new one's signing secret
shown this once), each webhook's delivery log and its "send test event" button. Deliveries are the
notifier's (``services/notifier``); these pages only write the rows it reads (``libs.infra.follows``).

A strategy may be followed when its page may be seen: public, or the user's own; any other id is
the same 404 as an unknown one. Another user's webhook is a 404 too.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog
from anyio import to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.response import Redirect

from botranks_domain.accounts import StrategyProfile
from botranks_domain.errors import NotFound
from libs.infra.db import Database
from libs.infra.follows import Follows
from libs.infra.follows.events import ping_event
from libs.infra.follows.guard import Refused, check_url

from .forms import form_field
from .rendering import render
from .sessions import require_user, signed_in_user, to_login

log = structlog.get_logger(service="command_api")

NOTICES = {
    "followed": "You follow this strategy now.",
    "unfollowed": "You no longer follow that strategy.",
    "deleted": "Webhook deleted: nothing more is sent to it.",
    "test": "Test event queued: it is delivered within seconds (reload to see the response).",
}
NO_STORE = {"Cache-Control": "no-store"}


def _visible(db: Database, user: UUID, strategy_id: UUID) -> StrategyProfile:
    profile = db.identity.profile(strategy_id)
    if profile is None or (profile.visibility != "public" and profile.owner_id != user):
        raise NotFound(f"Strategy {strategy_id} not found")
    return profile


def _overview(db: Database, user: UUID) -> dict[str, Any]:
    follows = Follows(db.datastore)
    followed = []
    for strategy_id, since in follows.following(user):
        profile = db.identity.profile(strategy_id)
        if profile is not None:
            followed.append({"profile": profile, "since": since})
    return {"followed": followed, "webhooks": follows.webhooks(user)}


async def _following_page(request: Request, user: UUID, status: int = 200, **context: Any) -> Response:
    data = await to_thread.run_sync(_overview, request.app.state.db, user)
    notice = NOTICES.get(request.query_params.get("done", "")) if status == 200 else None
    headers = NO_STORE if "secret" in context else None
    return render(
        request,
        "following.html",
        status=status,
        headers=headers,
        title="Following",
        signed_in=True,
        notice=notice,
        **data,
        **context,
    )


@get("/following")
async def following_page(request: Request) -> Response:
    user = await signed_in_user(request)
    if user is None:
        return to_login()
    return await _following_page(request, user)


@get("/follow/{strategy_id:uuid}")
async def follow_page(request: Request, state: State, strategy_id: UUID) -> Response:
    """Where a strategy page's "Follow" link leads: the button (a form, so CSRF-checked)."""
    user = await signed_in_user(request)
    if user is None:
        return to_login()

    def load() -> tuple[StrategyProfile, bool]:
        profile = _visible(state.db, user, strategy_id)
        return profile, any(s == strategy_id for s, _ in Follows(state.db.datastore).following(user))

    profile, following = await to_thread.run_sync(load)
    return render(
        request, "follow.html", title=f"Follow {profile.name}", signed_in=True, strategy=profile, following=following
    )


@post("/follow/{strategy_id:uuid}")
async def follow(request: Request, state: State, strategy_id: UUID) -> Response:
    user = await require_user(request)

    def write() -> None:
        _visible(state.db, user, strategy_id)
        Follows(state.db.datastore).follow(user, strategy_id)

    await to_thread.run_sync(write)
    log.info("strategy_followed", strategy_id=str(strategy_id))
    return Redirect("/account/following?done=followed", status_code=303)


@post("/follow/{strategy_id:uuid}/unfollow")
async def unfollow(request: Request, state: State, strategy_id: UUID) -> Response:
    user = await require_user(request)
    await to_thread.run_sync(Follows(state.db.datastore).unfollow, user, strategy_id)
    return Redirect("/account/following?done=unfollowed", status_code=303)


@post("/webhooks")
async def create_webhook(request: Request, state: State) -> Response:
    """The answer shows the signing secret this once (``no-store``); no page shows it again."""
    user = await require_user(request)
    form = await request.form()
    url = form_field(form, "url").strip()
    try:
        check_url(url)
    except Refused as exc:
        return await _following_page(request, user, status=422, error=f"`url`: {exc}", typed_url=url[:2000])
    hook, secret = await to_thread.run_sync(Follows(state.db.datastore).create_webhook, user, url)
    log.info("webhook_created", webhook_id=str(hook.id))
    return await _following_page(request, user, status=201, created=hook, secret=secret)


@post("/webhooks/{webhook_id:uuid}/delete")
async def delete_webhook(request: Request, state: State, webhook_id: UUID) -> Response:
    user = await require_user(request)
    await to_thread.run_sync(Follows(state.db.datastore).delete_webhook, user, webhook_id)
    log.info("webhook_deleted", webhook_id=str(webhook_id))
    return Redirect("/account/following?done=deleted", status_code=303)


@get("/webhooks/{webhook_id:uuid}")
async def webhook_page(request: Request, state: State, webhook_id: UUID) -> Response:
    """A webhook and its delivery log: the latest deliveries and each one's last response."""
    user = await signed_in_user(request)
    if user is None:
        return to_login()
    follows = Follows(state.db.datastore)

    def load() -> tuple[Any, list[Any]]:
        return follows.webhook(user, webhook_id), follows.deliveries(user, webhook_id)

    hook, deliveries = await to_thread.run_sync(load)
    notice = NOTICES.get(request.query_params.get("done", ""))
    return render(
        request,
        "webhook.html",
        title="Webhook",
        signed_in=True,
        hook=hook,
        deliveries=deliveries,
        notice=notice,
    )


@post("/webhooks/{webhook_id:uuid}/test")
async def send_test_event(request: Request, state: State, webhook_id: UUID) -> Response:
    """Queue a ``ping`` event for the notifier to deliver like any other."""
    user = await require_user(request)
    follows = Follows(state.db.datastore)
    site = request.app.state.settings.url

    def queue() -> None:
        follows.webhook(user, webhook_id)
        event_id, body = ping_event(webhook_id, site)
        follows.enqueue(webhook_id, event_id, None, "ping", body)

    await to_thread.run_sync(queue)
    return Redirect(f"/account/webhooks/{webhook_id}?done=test", status_code=303)


HANDLERS = [
    following_page,
    follow_page,
    follow,
    unfollow,
    create_webhook,
    delete_webhook,
    webhook_page,
    send_test_event,
]
