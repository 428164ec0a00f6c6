"""The ``botranks`` command: run the system, manage strategies, rebuild projections."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
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
    try:
        from .supervisor import AlreadyRunning, up  # a Ctrl-C this early: nothing started yet

        status = up(args.port, _home())  # from here on SIGINT/SIGTERM/SIGHUP stop everything cleanly
    except KeyboardInterrupt:
        sys.exit(130)
    except AlreadyRunning as exc:  # another `up` holds BOTRANKS_HOME/run/up.lock
        sys.exit(str(exc))
    if status:
        sys.exit(status)


def cmd_strategy_create(args) -> None:
    from libs.infra.auth import create_strategy

    store = _store()
    try:
        owner = None
        if args.owner_email:
            with store.cursor() as curs:
                row = curs.execute("SELECT id FROM users WHERE lower(email) = lower(%s)",
                                   (args.owner_email,)).fetchone()
            if row is None:
                sys.exit(f"no account with email {args.owner_email} (register first: POST /auth/register)")
            owner = row["id"]
        strategy_id, key = create_strategy(store, args.name, benchmark=args.benchmark, owner_id=owner)
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


def cmd_prices_import(args) -> None:
    from services.market_data.service import import_files

    store = _store()
    try:
        written, errors = import_files(store, args.files)
    finally:
        store.close()
    for error in errors:
        print(error, file=sys.stderr)
    print(json.dumps({"rows_written": written, "errors": len(errors)}))
    if errors:
        sys.exit(1)


def cmd_prices_fetch(args) -> None:
    from services.market_data.polygon import PolygonClient, PolygonError
    from services.market_data.service import fetch

    api_key = os.environ.get("BOTRANKS_POLYGON_API_KEY", "")
    if not api_key:
        sys.exit("BOTRANKS_POLYGON_API_KEY is not set")
    store = _store()
    try:
        with PolygonClient(api_key) as client:
            changed = fetch(store, client, [s.strip() for s in args.symbols.split(",") if s.strip()],
                            args.from_, args.to)
    except PolygonError as exc:
        sys.exit(f"Polygon: {exc}")
    finally:
        store.close()
    print(json.dumps({"rows_written": changed}))


def cmd_demo(args) -> None:
    from .demo import run_demo

    store = _store()
    try:
        print(json.dumps(run_demo(store, args.base_url), indent=2))
    finally:
        store.close()


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
    c.add_argument("--owner-email", help="an account that may then manage the strategy's keys over HTTP")
    c.set_defaults(func=cmd_strategy_create)

    p = sub.add_parser("projector", help="run the projector, or rebuild every read model from the event store")
    p.add_argument("action", choices=["run", "rebuild"])
    p.set_defaults(func=cmd_projector)

    p = sub.add_parser("prices", help="the price cache: import files or fetch from Polygon")
    psub = p.add_subparsers(dest="action", required=True)
    c = psub.add_parser("import", help="load CSV/Parquet files (symbol,date,close[,open,high,low,volume])")
    c.add_argument("files", nargs="+")
    c.set_defaults(func=cmd_prices_import)
    c = psub.add_parser("fetch", help="pull daily bars from Polygon (BOTRANKS_POLYGON_API_KEY)")
    c.add_argument("--symbols", required=True, help="comma-separated, e.g. AAPL,SPY,BTC-USD")
    c.add_argument("--from", dest="from_", required=True, type=date.fromisoformat)
    c.add_argument("--to", required=True, type=date.fromisoformat)
    c.set_defaults(func=cmd_prices_fetch)

    p = sub.add_parser("demo", help="load synthetic prices and replay a sample bot through the API")
    p.add_argument("--base-url", default=os.environ.get("BOTRANKS_URL", "http://127.0.0.1:8000"),
                   help="where `botranks up` listens (default: BOTRANKS_URL, else http://127.0.0.1:8000)")
    p.set_defaults(func=cmd_demo)

    args = parser.parse_args(argv)
    configure_logging("cli", os.environ.get("BOTRANKS_LOG_LEVEL", "info"))
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
