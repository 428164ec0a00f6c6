"""Following: the strategies a signed-in user follows, their webhooks (a new one's signing secret
shown this once), each webhook's delivery log and its "send test event" button. Deliveries are the
notifier's (``services/notifier``); these pages only write the rows it reads (``libs.infra.follows``).

The rules (who may follow what, the URL a webhook may have, the limits) are ``..following``'s, which
the JSON API (``follow_routes``) applies too.
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
from botranks_domain.errors import RuleBroken
from libs.infra.db import Database
from libs.infra.follows import Follows

from .. import following
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


def _overview(db: Database, user: UUID) -> dict[str, Any]:
    followed, _ = following.followed(db, user)
    return {
        "followed": [{"profile": profile, "since": since} for profile, since in followed],
        "webhooks": Follows(db.datastore).webhooks(user),
    }


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
        profile = following.visible(state.db, user, strategy_id)
        return profile, following.is_following(state.db, user, strategy_id)

    profile, already = await to_thread.run_sync(load)
    return render(
        request, "follow.html", title=f"Follow {profile.name}", signed_in=True, strategy=profile, following=already
    )


@post("/follow/{strategy_id:uuid}")
async def follow(request: Request, state: State, strategy_id: UUID) -> Response:
    user = await require_user(request)

    await to_thread.run_sync(following.follow, state.db, user, strategy_id)
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
        hook, secret = await to_thread.run_sync(following.create_webhook, state.db, user, url)
    except RuleBroken as exc:
        return await _following_page(request, user, status=422, error=exc.detail, typed_url=url[:2000])
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
    await to_thread.run_sync(following.send_test_event, state.db, user, webhook_id, request.app.state.settings.url)
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
