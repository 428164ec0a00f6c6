"""The owner's public handle on /account (the JSON API's ``PUT /me/handle``, as a form)."""

from __future__ import annotations

import structlog
from anyio import to_thread
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.response import Redirect

from botranks_domain.accounts import HandleIn
from botranks_domain.errors import DomainError

from .forms import FormError, convert_form, form_error, form_field
from .sessions import require_user
from .strategies import strategies_page_for

log = structlog.get_logger(service="command_api")


@post("/handle")
async def set_handle(request: Request, state: State) -> Response:
    """Choose, change or (empty) drop the handle; an error shows the page again with what was typed."""
    user = await require_user(request)
    typed = form_field(await request.form(), "handle")
    try:
        wanted = typed.strip().lstrip("@") or None
        data = convert_form({"handle": wanted}, HandleIn)
        me = await to_thread.run_sync(state.db.identity.set_handle, user, data.handle)
    except (DomainError, FormError) as exc:
        err = form_error(exc)
        return await strategies_page_for(request, user, status=err.status, handle_error=err.detail, typed_handle=typed)
    log.info("handle_changed", user_id=str(user), handle=me.handle, via="page")
    return Redirect("/account?done=handle", status_code=303)
