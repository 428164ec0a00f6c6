"""The ``botranks`` command: run the system, manage strategies, rebuild projections."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from libs.infra.db import Database
from libs.infra.logs import configure_logging
from libs.infra.settings import Settings


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    """The database of ``settings``: its URL, else the embedded one of `botranks up` under the home.

    A CLI command never creates a database: with no URL and no embedded database yet, it says
    so and stops.
    """
    from .embedded import start_postgres

    url = settings.database_url
    if not url:
        data_dir = settings.home / "postgres"
        if not (data_dir / "PG_VERSION").exists():
            sys.exit(
                f"botranks: no database at {data_dir}: start one with `botranks up` "
                "(or set BOTRANKS_DATABASE_URL / BOTRANKS_HOME)"
            )
        url, _ = start_postgres(data_dir)  # started, or the running one of `botranks up` adopted
    db = Database(url, pool_size=1).create_tables()
    try:
        yield db
    finally:
        db.close()


def cmd_up(args) -> None:
    try:
        from .supervisor import AlreadyRunning, up  # a Ctrl-C this early: nothing started yet

        status = up(args.port, args.settings)  # from here on SIGINT/SIGTERM/SIGHUP stop everything cleanly
    except KeyboardInterrupt:
        sys.exit(130)
    except AlreadyRunning as exc:  # another `up` holds BOTRANKS_HOME/run/up.lock
        sys.exit(str(exc))
    if status:
        sys.exit(status)


def cmd_strategy_create(args) -> None:
    with _database(args.settings) as db:
        owner = None
        if args.owner_email:
            owner = db.identity.user_id(args.owner_email)
            if owner is None:
                sys.exit(f"no account with email {args.owner_email} (register first: POST /auth/register)")
        strategy_id, key = db.identity.create_strategy(
            args.name, benchmark=args.benchmark, owner_id=owner, base_currency=args.base_currency
        )
    print(json.dumps({"strategy_id": str(strategy_id), "api_key": key}))


def currency_flag(raw: str) -> str:
    """``--base-currency``: an ISO 4217 code in tender, any case (``eur`` → ``EUR``)."""
    from botranks_domain.currency import is_currency

    code = raw.strip().upper()
    if not is_currency(code):
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 4217 currency code in tender (e.g. USD, EUR, JPY)")
    return code


def cmd_strategy_list(args) -> None:
    with _database(args.settings) as db:
        rows = db.identity.all_strategies()
    print(json.dumps(rows, indent=2, default=str))


def cmd_strategy_delete(args) -> None:
    from uuid import UUID

    try:
        strategy_id = UUID(args.strategy_id)
    except ValueError:
        sys.exit(f"botranks strategy delete: not a strategy id (a UUID): {args.strategy_id!r}")
    if not args.yes:
        if not sys.stdin.isatty():
            sys.exit("botranks strategy delete: pass --yes to delete without a terminal to confirm on")
        answer = input(f"Delete strategy {strategy_id}, its keys, events and read models for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            sys.exit("botranks strategy delete: nothing deleted")
    with _database(args.settings) as db:
        summary = db.delete_strategy(strategy_id)
    if summary is None:
        sys.exit(f"botranks strategy delete: no strategy {strategy_id}")
    print(json.dumps(summary, indent=2))


def cmd_projector(args) -> None:
    from services.projector.main import run_daemon, run_rebuild

    settings = args.settings
    if args.action == "rebuild":
        with _database(settings) as db:
            run_rebuild(settings.with_servers(db.url, settings.nats_url), args.partitions)
        return
    asyncio.run(run_daemon(settings.require_servers()))


def _import(args, what: str, counted: str) -> None:
    """Load files with the market-data importer ``what``: one line per error on stderr, exit 1 if any."""
    from services.market_data import service

    with _database(args.settings) as db:
        written, errors = getattr(service, what)(db, args.files)
    for error in errors:
        print(error, file=sys.stderr)
    print(json.dumps({counted: written, "errors": len(errors)}))
    if errors:
        sys.exit(1)


def cmd_relay(args) -> None:
    from services.relay.main import run_relay

    asyncio.run(run_relay(args.settings.require_servers()))


def cmd_prices_import(args) -> None:
    _import(args, "import_files", "rows_written")


def cmd_prices_fetch(args) -> None:
    from services.market_data.polygon import PolygonClient, PolygonError
    from services.market_data.service import fetch

    if not args.settings.polygon_api_key:
        sys.exit("BOTRANKS_POLYGON_API_KEY is not set")
    with _database(args.settings) as db:
        try:
            with PolygonClient(args.settings.polygon_api_key) as client:
                changed, splits = fetch(
                    db, client, [s.strip() for s in args.symbols.split(",") if s.strip()], args.from_, args.to
                )
        except PolygonError as exc:
            sys.exit(f"Polygon: {exc}")
    print(json.dumps({"rows_written": changed, "splits_written": splits}))


def cmd_splits_import(args) -> None:
    _import(args, "import_split_files", "splits_written")


def cmd_splits_list(args) -> None:
    with _database(args.settings) as db:
        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
        splits = db.prices.splits(symbols)
    print(
        json.dumps(
            [
                {
                    "symbol": sp.symbol,
                    "ex_date": sp.ex_date.isoformat(),
                    "split_from": str(sp.split_from),
                    "split_to": str(sp.split_to),
                    "ratio": sp.ratio,
                }
                for sp in splits
            ],
            indent=2,
        )
    )


def cmd_verify(args) -> None:
    from uuid import UUID

    from services.projector.verify import verify_chains

    strategy = None
    if args.strategy:
        try:
            strategy = UUID(args.strategy)
        except ValueError:
            sys.exit(f"botranks verify: --strategy must be a strategy id (a UUID), got {args.strategy!r}")
    with _database(args.settings) as db:
        summary = verify_chains(db, strategy)
    print(json.dumps(summary, indent=2))
    if not summary["ok"]:
        first = summary["first_mismatch"]
        sys.exit(
            f"botranks verify: chain mismatch for strategy {first['strategy_id']} at seq {first['seq']}"
            f" (notification {first['notification_id']}): {first['reason']}"
        )


def cmd_backup(args) -> None:
    from pathlib import Path

    from .backup import BackupError, backup

    with _database(args.settings) as db:
        try:
            summary = backup(db.url, Path(args.file))
        except BackupError as exc:
            sys.exit(f"botranks backup: {exc}")
    print(json.dumps(summary, indent=2, default=str))


def cmd_restore(args) -> None:
    from pathlib import Path

    from services.projector.main import run_rebuild

    from .backup import BackupError, restore

    settings = args.settings
    with _database(settings) as db:
        try:
            summary = restore(db.url, Path(args.file))
        except BackupError as exc:
            sys.exit(f"botranks restore: {exc}")
        if not args.no_rebuild:
            summary["rebuilt_events"] = run_rebuild(settings.with_servers(db.url, settings.nats_url))
            summary.pop("next", None)
    print(json.dumps(summary, indent=2, default=str))


def cmd_demo(args) -> None:
    from services.demo_live.replay import exclusively

    from .demo import run_demo

    with _database(args.settings) as db, exclusively(db.url, 300):  # the live loop waits meanwhile
        print(json.dumps(run_demo(db, args.base_url or args.settings.url, reset=args.reset), indent=2))


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
    c.add_argument(
        "--base-currency",
        type=currency_flag,
        default="USD",
        help="the currency of its cash, fees and every figure (ISO 4217, default USD)",
    )
    c.add_argument("--owner-email", help="an account that may then manage the strategy's keys over HTTP")
    c.set_defaults(func=cmd_strategy_create)
    c = ssub.add_parser("list", help="every strategy: id, name, owner, visibility, active keys, last use")
    c.set_defaults(func=cmd_strategy_list)
    c = ssub.add_parser(
        "delete",
        help="delete a strategy FOR GOOD: its keys, its events in the event store and"
        " every read model (take a `botranks backup` first if in doubt)",
    )
    c.add_argument("strategy_id")
    c.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    c.set_defaults(func=cmd_strategy_delete)

    p = sub.add_parser(
        "projector",
        help="run a projector (any number share the partitions), or rebuild every read model from the event store",
    )
    p.add_argument("action", choices=["run", "rebuild"])
    p.add_argument(
        "--partitions",
        type=int,
        help="rebuild: lay the projection out in this many partitions"
        " from then on (1..1024; default: as it is, 16 at first)",
    )
    p.set_defaults(func=cmd_projector)

    p = sub.add_parser(
        "relay", help="publish the event store to JetStream (any number: one leads, the others stand by)"
    )
    p.set_defaults(func=cmd_relay)

    p = sub.add_parser(
        "verify",
        help="recompute every strategy's hash chain from the event store and compare it"
        " with the published one (exit 1 on the first mismatch)",
    )
    p.add_argument("--strategy", help="only this strategy's chain")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("prices", help="the price cache (closes as traded): import files or fetch from Polygon")
    psub = p.add_subparsers(dest="action", required=True)
    c = psub.add_parser(
        "import",
        help="load CSV/Parquet files of unadjusted closes"
        " (symbol,date,close[,open,high,low,volume,adjusted,currency]; a row with adjusted=true refuses"
        " the file; currency: the symbol's ISO 4217 quote currency; FX rates are closes of C:EURUSD-style"
        " symbols, one EUR in USD)",
    )
    c.add_argument("files", nargs="+")
    c.set_defaults(func=cmd_prices_import)
    c = psub.add_parser(
        "fetch", help="pull unadjusted daily bars and the splits from Polygon (BOTRANKS_POLYGON_API_KEY)"
    )
    c.add_argument("--symbols", required=True, help="comma-separated, e.g. AAPL,SPY,BTC-USD")
    c.add_argument("--from", dest="from_", required=True, type=date.fromisoformat)
    c.add_argument("--to", required=True, type=date.fromisoformat)
    c.set_defaults(func=cmd_prices_fetch)

    p = sub.add_parser("splits", help="stock splits, applied by the ledger at the start of their ex-date")
    psub = p.add_subparsers(dest="action", required=True)
    c = psub.add_parser(
        "import",
        help="load CSV files (symbol,ex_date,split_from,split_to; a 4-for-1 split is"
        " 1,4); every strategy that held the symbol is re-derived from the ex-date on",
    )
    c.add_argument("files", nargs="+")
    c.set_defaults(func=cmd_splits_import)
    c = psub.add_parser("list", help="the known splits of some symbols")
    c.add_argument("--symbols", required=True, help="comma-separated, e.g. AAPL,TSLA")
    c.set_defaults(func=cmd_splits_list)

    p = sub.add_parser(
        "backup",
        help="dump what cannot be derived (the event store, identity, prices and"
        " splits) to FILE (pg_dump custom format); read models and NATS are rebuilt, not saved",
    )
    p.add_argument("file")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser(
        "restore",
        help="load a backup into an EMPTY database (BOTRANKS_DATABASE_URL, or the"
        " embedded one), then rebuild every read model from it",
    )
    p.add_argument("file")
    p.add_argument("--no-rebuild", action="store_true", help="only load; run `botranks projector rebuild` later")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser(
        "demo", help="load synthetic prices and replay the sample bots through the API (again: only what is new)"
    )
    p.add_argument("--base-url", help="where `botranks up` listens (default: BOTRANKS_URL, else http://127.0.0.1:8000)")
    p.add_argument("--reset", action="store_true", help="delete the demo's strategies first and start over")
    p.set_defaults(func=cmd_demo)

    from botranks_client.cli import add_commands  # orders import, state, performance, nav: over the HTTP API

    add_commands(sub)

    args = parser.parse_args(argv)
    args.settings = Settings.from_env()
    configure_logging("cli", args.settings.log_level)
    args.func(args)


if __name__ == "__main__":
    main()
