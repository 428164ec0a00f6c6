"""What every command shares: the connection (flags, then the environment), the client, and one-line errors."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

DEFAULT_URL = "http://127.0.0.1:8000"


class CliError(Exception):
    """A one-line error for the user (exit code 2)."""


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str
    strategy_id: str


def connection(args: argparse.Namespace) -> Connection:
    """Flags first, then the environment; a missing key or strategy is a CliError."""
    settings = getattr(args, "settings", None)
    url = (args.url or (settings.url if settings else os.environ.get("BOTRANKS_URL")) or DEFAULT_URL).rstrip("/")
    key = args.api_key or os.environ.get("FQ_API_KEY", "")
    strategy = args.strategy or os.environ.get("FQ_STRATEGY_ID", "")
    if not key:
        raise CliError("no API key: set FQ_API_KEY or pass --api-key")
    if not strategy:
        raise CliError("no strategy: set FQ_STRATEGY_ID or pass --strategy")
    try:
        UUID(strategy)
    except ValueError:
        raise CliError(f"the strategy id must be a UUID, got {strategy!r}") from None
    return Connection(url, key, strategy)


def make_client(conn: Connection, **options: Any):
    """A ``botranks_client.Client`` for ``conn`` (tests replace this: the commands call ``common.make_client``)."""
    from botranks_client import Client

    return Client(conn.url, conn.api_key, conn.strategy_id, **options)


def explain(exc: BaseException, conn: Connection | None) -> str:
    """The one line a person reads for an error of the client (or of the file)."""
    from botranks_client import errors

    where = conn.url if conn else "the server"
    if isinstance(exc, errors.ApiError):
        detail = getattr(exc, "detail", "") or str(exc)
        status = getattr(exc, "status", None)
        if status == 401:
            return f"the API key was refused (401: {detail}); check FQ_API_KEY / --api-key"
        if status == 403:
            return f"this API key does not grant access to strategy {conn.strategy_id if conn else ''} (403: {detail})"
        if status == 404:
            return f"no such strategy at {where} (404: {detail})"
        return f"{where} answered {status}: {detail}"
    if isinstance(exc, errors.TransportError):
        reason = str(exc.__cause__ or exc) or type(exc.__cause__).__name__
        return f"cannot reach BotRanks at {where} ({reason}): is `botranks up` running? (BOTRANKS_URL / --url)"
    if isinstance(exc, errors.ServerError):
        return f"{where} failed: {exc} (retry later)"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return str(exc) or type(exc).__name__


def guarded(func: Callable[[argparse.Namespace], int | None]) -> Callable[[argparse.Namespace], None]:
    """Run a command: its exit code, one line on stderr and exit 2 on an error, never a traceback."""

    def run(args: argparse.Namespace) -> None:
        from botranks_client.errors import BotRanksError

        try:
            code = func(args)
        except CliError as exc:
            print(f"botranks: {exc}", file=sys.stderr)
            sys.exit(2)
        except (BotRanksError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):  # `botranks nav --csv | head`: the reader has had enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(0)
            print(f"botranks: {explain(exc, getattr(args, 'conn', None))}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("botranks: interrupted", file=sys.stderr)
            sys.exit(130)
        except Exception as exc:  # a bug or an unforeseen answer: still one line
            print(f"botranks: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
            sys.exit(2)
        if code:
            sys.exit(code)

    return run
