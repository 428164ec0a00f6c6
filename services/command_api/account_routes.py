"""HTTP routes for people: register/login/logout, their strategies and the strategies' API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
import structlog
from anyio import to_thread
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, State
from litestar.handlers import BaseRouteHandler
from litestar.params import Parameter

from botranks_domain.accounts import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyInfo,
    Credentials,
    HandleIn,
    Registration,
    Strategy,
    StrategyIn,
    StrategyProfile,
    StrategySettingsIn,
    User,
)
from libs.infra.openapi import ACCOUNTS, NONE_REQUIRED, SESSION_REQUIRED
from libs.infra.web import error_responses

from . import accounts

log = structlog.get_logger(service="command_api")
COOKIE = "access_token"


class LoginResult(msgspec.Struct):
    user: User
    expires_at: datetime


def _secure(request: Request) -> bool:
    """HTTPS as the client sees it: uvicorn takes the scheme from X-Forwarded-Proto of trusted proxies only."""
    return request.url.scheme == "https"


def _client(request: Request) -> str | None:
    """The client's address (uvicorn takes it from X-Forwarded-For of trusted proxies only)."""
    return request.client.host if request.client else None


async def session_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Signed-in users only: sets ``state.user_id`` from the session cookie."""
    connection.state.user_id = await to_thread.run_sync(
        connection.app.state.db.identity.session_user, connection.cookies.get(COOKIE)
    )


class AuthRoutes(Controller):
    path = "/auth"
    tags, security = [ACCOUNTS], NONE_REQUIRED

    @post(
        "/register",
        status_code=201,
        responses=error_responses(400, 403, 409, 415, 422, 429, 503),
        summary="Create an account (optionally with its public handle; 409 when the email or handle is taken)",
    )
    async def register(self, request: Request, state: State, data: Registration) -> User:
        user = await accounts.register(state.db.identity, data, state.settings, _client(request), state.hash_lane)
        log.info("user_registered", user_id=str(user.id))
        return user

    @post(
        "/login",
        status_code=200,
        responses=error_responses(400, 401, 403, 415, 422, 429, 503),
        summary="Sign in; sets the access_token session cookie",
    )
    async def login(self, request: Request, state: State, data: Credentials) -> Response[LoginResult]:
        ttl = state.settings.session_ttl_s
        token, user, expires_at = await accounts.login(
            state.db.identity, data, state.settings, _client(request), state.hash_lane
        )
        log.info("user_logged_in", user_id=str(user.id))
        cookie = Cookie(
            key=COOKIE, value=token, httponly=True, samesite="lax", secure=_secure(request), max_age=ttl, path="/"
        )
        return Response(LoginResult(user, expires_at), cookies=[cookie])

    @post(
        "/logout",
        status_code=200,
        responses=error_responses(403, 503),
        summary="End the session server-side and clear the cookie",
    )
    async def logout(self, request: Request, state: State) -> Response[dict[str, str]]:
        await to_thread.run_sync(state.db.identity.end_session, request.cookies.get(COOKIE))
        return Response(
            {"status": "logged_out"},
            cookies=[
                Cookie(
                    key=COOKIE, value="", max_age=0, httponly=True, samesite="lax", secure=_secure(request), path="/"
                )
            ],
        )


class StrategyRoutes(Controller):
    path = "/strategies"
    guards = [session_guard]
    tags, security = [ACCOUNTS], SESSION_REQUIRED

    @post(
        "/",
        status_code=201,
        responses=error_responses(400, 401, 403, 409, 415, 422, 503),
        summary="Create a strategy owned by the signed-in user (409 past BOTRANKS_MAX_STRATEGIES_PER_ACCOUNT)",
    )
    async def create(self, request: Request, state: State, data: StrategyIn) -> Strategy:
        strategy = await to_thread.run_sync(
            accounts.new_strategy,
            state.db.identity,
            request.state.user_id,
            data,
            state.settings.max_strategies_per_account,
        )
        log.info("strategy_created", strategy_id=str(strategy.id), user_id=str(request.state.user_id))
        return strategy

    @get(
        "/",
        responses=error_responses(400, 401, 503),
        summary="The signed-in user's strategies, oldest first, a page at a time (X-Total-Count; Link: next, prev)",
    )
    async def mine(
        self,
        request: Request,
        state: State,
        limit: Annotated[int, Parameter(ge=1, le=accounts.STRATEGY_PAGE_MAX)] = accounts.STRATEGY_PAGE_MAX,
        offset: Annotated[int, Parameter(ge=0, le=accounts.MAX_OFFSET)] = 0,
    ) -> Response[list[Strategy]]:
        strategies, headers = await to_thread.run_sync(
            accounts.my_strategies, state.db.identity, request.state.user_id, limit, offset
        )
        return Response(strategies, headers=headers)

    @get(
        "/{strategy_id:uuid}",
        responses=error_responses(400, 401, 404, 503),
        summary="One of the signed-in user's strategies: its settings and profile (description, tags, handle)",
    )
    async def one(self, request: Request, state: State, strategy_id: UUID) -> StrategyProfile:
        return await to_thread.run_sync(accounts.own_profile, state.db.identity, request.state.user_id, strategy_id)

    @patch(
        "/{strategy_id:uuid}",
        responses=error_responses(400, 401, 403, 404, 415, 422, 503),
        summary="Change a strategy's settings or profile (any subset of the fields; its owner only)",
        description='`description` is Markdown (raw HTML is shown as text; links get rel="nofollow ugc"),'
        " at most 4,000 characters; `tags`: at most 8 of 1 to 24 of a-z, 0-9 and - (lower-cased, spaces"
        " become -). A new `base_currency` or `benchmark` recomputes every figure (422 when a rate is missing).",
    )
    async def change(
        self, request: Request, state: State, strategy_id: UUID, data: StrategySettingsIn
    ) -> StrategyProfile:
        profile = await to_thread.run_sync(accounts.change_strategy, state.db, request.state.user_id, strategy_id, data)
        log.info("strategy_updated", strategy_id=str(strategy_id), user_id=str(request.state.user_id))
        return profile

    @post(
        "/{strategy_id:uuid}/api-keys",
        status_code=201,
        responses=error_responses(400, 401, 403, 404, 415, 422, 503),
        summary="Create an API key (plaintext shown once)",
    )
    async def create_key(self, request: Request, state: State, strategy_id: UUID, data: ApiKeyIn) -> ApiKeyCreated:
        created = await to_thread.run_sync(state.db.identity.create_key, request.state.user_id, strategy_id, data.name)
        log.info("api_key_created", strategy_id=str(strategy_id), key_id=str(created.id))
        return created

    @get(
        "/{strategy_id:uuid}/api-keys",
        responses=error_responses(400, 401, 403, 404, 503),
        summary="API key metadata (never the key itself)",
    )
    async def list_keys(self, request: Request, state: State, strategy_id: UUID) -> list[ApiKeyInfo]:
        return await to_thread.run_sync(state.db.identity.list_keys, request.state.user_id, strategy_id)

    @post(
        "/{strategy_id:uuid}/api-keys/{key_id:uuid}/revoke",
        status_code=200,
        responses=error_responses(400, 401, 403, 404, 503),
        summary="Revoke a key (idempotent); it answers 401 from then on",
    )
    async def revoke(self, request: Request, state: State, strategy_id: UUID, key_id: UUID) -> ApiKeyInfo:
        info = await to_thread.run_sync(state.db.identity.revoke_key, request.state.user_id, strategy_id, key_id)
        log.info("api_key_revoked", strategy_id=str(strategy_id), key_id=str(key_id))
        return info


class ProfileRoutes(Controller):
    """The signed-in account: who it is and its public handle."""

    path = "/me"
    guards = [session_guard]
    tags, security = [ACCOUNTS], SESSION_REQUIRED

    @get("/", responses=error_responses(401, 503), summary="The signed-in account (email, public handle)")
    async def me(self, request: Request, state: State) -> User:
        return await to_thread.run_sync(state.db.identity.user, request.state.user_id)

    @put(
        "/handle",
        responses=error_responses(400, 401, 403, 409, 415, 422, 503),
        summary="Choose, change or (null) drop the public handle (409 when another account has it)",
    )
    async def set_handle(self, request: Request, state: State, data: HandleIn) -> User:
        user = await to_thread.run_sync(state.db.identity.set_handle, request.state.user_id, data.handle)
        log.info("handle_changed", user_id=str(user.id), handle=user.handle)
        return user
