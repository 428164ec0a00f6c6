"""Entry point shared by the two HTTP services: parse ``--host/--port``, log JSON, run uvicorn."""

from __future__ import annotations

import argparse
from typing import Callable

import uvicorn
from litestar import Litestar

from .logs import configure_logging
from .settings import Settings


def serve(service: str, create_app: Callable[[Settings], Litestar], default_port: int) -> None:
    parser = argparse.ArgumentParser(description=f"BotRanks {service}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args()
    settings = Settings.from_env()
    configure_logging(service, settings.log_level)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning",
                access_log=False, lifespan="on")
