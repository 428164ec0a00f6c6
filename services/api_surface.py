"""The APIs behind ``botranks up``'s one base URL, for each to know the other's routes and schema
(``libs.infra.surface``): the proxy sends GET/HEAD of ``/api/v1`` and of the public pages to
query_api and every other request to command_api."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from litestar import Litestar

from libs.infra.settings import Settings

APPS = {"command_api": "services.command_api.app", "query_api": "services.query_api.app"}


def peers_of(service: str, settings: Settings) -> Callable[[], list[Litestar]]:
    """What builds the apps of the other services (imported when called: the services import this)."""

    def build() -> list[Litestar]:
        return [
            importlib.import_module(module).create_app(settings) for name, module in APPS.items() if name != service
        ]

    return build
