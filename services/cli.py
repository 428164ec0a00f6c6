"""The ``botranks`` command: run the system, manage strategies, rebuild projections."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from libs.infra.logs import configure_logging


def _store():
    from libs.infra.store import EventStore

    url = os.environ.get("BOTRANKS_DATABASE_URL")
    if not url:
        # the embedded PostgreSQL of `botranks up` (started or reused under BOTRANKS_HOME)
        from libs.infra.embedded import start_postgres

        url, _ = start_postgres(_home() / "postgres")
    store = EventStore(url, pool_size=1)
    store.create_tables()
    return store


def _home() -> Path:
    return Path(os.environ.get("BOTRANKS_HOME", ".botranks")).resolve()


def cmd_up(args) -> None:
    from .supervisor import up

    up(args.port, _home())


def cmd_strategy_create(args) -> None:
    from libs.infra.web import create_strategy

    store = _store()
    try:
        strategy_id, key = create_strategy(store, args.name, benchmark=args.benchmark)
    finally:
        store.close()
    print(json.dumps({"strategy_id": str(strategy_id), "api_key": key}))


def cmd_projector(args) -> None:
    from services.projector.main import main as projector_main

    if not os.environ.get("BOTRANKS_DATABASE_URL"):
        store = _store()
        os.environ["BOTRANKS_DATABASE_URL"] = store.database_url
        store.close()
    os.environ.setdefault("BOTRANKS_NATS_URL", "nats://127.0.0.1:4222")
    projector_main([args.action])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="botranks", description="BotRanks: performance ledger for trading bots")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="run command_api, query_api and projector behind one base URL")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("strategy", help="manage strategies")
    ssub = p.add_subparsers(dest="action", required=True)
    c = ssub.add_parser("create", help="create a strategy and print its id and first API key")
    c.add_argument("--name", required=True)
    c.add_argument("--benchmark", default="SPY")
    c.set_defaults(func=cmd_strategy_create)

    p = sub.add_parser("projector", help="run the projector, or rebuild every read model from the event store")
    p.add_argument("action", choices=["run", "rebuild"])
    p.set_defaults(func=cmd_projector)

    args = parser.parse_args(argv)
    configure_logging("cli", os.environ.get("BOTRANKS_LOG_LEVEL", "info"))
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
