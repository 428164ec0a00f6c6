"""Backup and restore of a BotRanks database: only what cannot be derived, in pg_dump's custom format.

What is backed up, and why
==========================

The event store is the only truth; everything the projector writes is a function of it, the
price cache and the identity tables. A backup therefore holds exactly the tables that cannot be
recomputed from the others (``BACKED_UP``, in the order a restore loads them):

- ``schema_migrations`` — the schema version the backup was taken at (a restore refuses a backup
  newer than the code, and records the versions it applied itself);
- ``botranks_meta`` — the store id (see "The store id" below);
- ``botranks_events`` and its sequence ``botranks_events_notification_id_seq`` — eventsourcing's
  stored events: the log itself, with its notification ids (the hash chains, cursors and
  ``/events`` pagination are all expressed in them, so they are restored as they were);
- ``users``, ``strategies``, ``api_keys`` — people, strategies (name, visibility, benchmark,
  owner, show_positions) and the SHA-256 of every API key: the bots' keys keep working, and the
  owners' passwords (argon2 hashes) too;
- ``strategy_tombstones`` — what deleted strategies left: their last per-day Sharpe and daily
  returns, still trials of the instance (every Deflated Sharpe Ratio is judged against them), and
  ``users.strategies_deleted`` with the users; nothing derives them again;
- ``prices``, ``splits`` — the price cache, as traded, and the stock splits. They are a cache of
  Polygon only in part: closes imported from files (``botranks prices import``, ``botranks
  splits import``) exist nowhere else, and every NAV, mark, omitted-price fill and corporate
  action was derived from them. Without them a rebuild would not give the same read models;
- ``market_data_symbols`` — the market-data daemon's bookkeeping of what it fetched from Polygon
  and up to when: restored with ``prices`` so that the daemon neither re-downloads every history
  nor believes it has bars it lacks (it is small);
- ``symbol_currencies`` — the currency each symbol is quoted in, where a source said so: every fill
  and mark of an instrument quoted in another currency than its strategy's is converted by it;
- ``price_updates`` and ``strategy_updates`` (with their sequences) — the outboxes the projector
  follows. Their history is not needed (a rebuild derives from the current prices and strategies
  and moves the projector's cursors to their ends, so nothing is replayed), but they are small
  and they are kept so that their ids stay monotonic across a restore: the latest
  ``price_updates`` id of a symbol is the benchmark's price version in ``/performance``'s cache
  keys and ETags, and a version must never come back with different content.

Not backed up, because a rebuild recreates them or they are ephemeral — every table not listed
above: every read model (``rm_*``), the projector's tracking table (``botranks_tracking``) and
its other bookkeeping (``projector_price_cursor`` and any layout or cursor table of the
projection: ``botranks projector rebuild`` rewrites them all from the tables above),
``relay_position`` (reset, see below), ``sessions`` (everyone signs in again), ``rate_windows``
and ``auth_throttle`` (sliding windows of the last minutes, UNLOGGED already). The functions,
types and indexes come from the code's migrations, not from the backup.

The dump is ``pg_dump -Fc`` with one ``--table`` per table (owned sequences come with their
tables), in one snapshot — the same one in which :func:`backup` counts the rows it reports — so
events, strategies and keys are consistent with each other. pg_dump only takes ACCESS SHARE
locks: ingest goes on during a backup. The archive holds the tables' definitions too, so it can
be inspected or restored by hand with the usual tools; :func:`restore` uses its data only.

pg_dump must be at least as new as the server: the one on PATH if its major version is at least
the server's, else the one pgserver (PyPI, the embedded PostgreSQL) ships in
``pgserver/pginstall/bin``. pg_restore only converts the archive to SQL here (it never connects),
so the newest available one is used: it reads archives of every older pg_dump.

How a restore orders schema and data
====================================

Into an EMPTY database only: one with no tables at all, or a fresh BotRanks schema whose data
tables are all empty (e.g. one that `botranks up` created and nothing wrote to). Anything else
is refused before anything is touched (:class:`RestoreRefused`).

1. ``Database(url).create_tables()``: the full schema of this code, the normal way (eventsourcing's
   table, type and sequence, then every migration: read-model tables, functions, indexes). This
   cannot be done after loading the dump's tables: the restored ``schema_migrations`` says every
   migration is applied, so the migrations would skip the read models, ``relay_position``,
   ``sessions`` and the functions the API-key guard calls.
2. One transaction on the target: lock the tables, check again that they are empty, delete the
   fresh ``botranks_meta`` row (a new random store id) and ``schema_migrations`` rows, then load
   the archive's data: pg_restore ``--data-only`` writes it as SQL (COPY blocks in the order of a
   ``-L`` list: ``users`` before ``strategies`` before ``api_keys``, for their foreign keys; then
   the sequences' ``setval``), which is streamed into that transaction with psycopg's COPY. A
   backup from an older schema loads too (COPY names its columns; newer columns take their
   defaults), and ``schema_migrations`` then gets the versions step 1 applied. The relay position
   is set to 0. Any error rolls the whole load back: the database is left as step 1 made it.
3. The caller then runs ``botranks projector rebuild`` (or :func:`services.projector.rebuild.
   rebuild`): every read model, the tracking position and the outbox cursors are derived from
   the restored tables. (A projector started without it would catch up from position 0 by itself,
   the slow way.)

The store id, the relay and NATS
================================

The store id is restored: a restored database is the same event store (the same events under the
same notification ids), so it keeps its stream, subject and consumer names
(``BOTRANKS_<store id>``). That is what we want for a recovery: a NATS server that outlived the
old database holds wake-ups for exactly these notification ids. The relay position is reset to 0,
so the relay republishes the whole log to that stream (JetStream's duplicate window drops what
it still holds of the last 10 minutes); that costs one message per event and nothing else,
because the projector reads the store, never the bus: a wake-up only says "look". It is safe
either way — also for a clone restored beside a still-running original on the same NATS, where
the two would share a stream: the worst a foreign or swallowed wake-up can do is delay a
projection until the projector's idle poll of the store (0.5 s).

This module runs no SQL itself: whole-database maintenance (the catalog, counts, locks, COPY, the
exported snapshot, ``schema_migrations``) goes through ``libs/infra/schema.py`` and the event
store's rows (``botranks_meta``, ``relay_position``) through ``store.EventsBackup``; it is run
while no service writes to the target.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from libs.infra import schema
from libs.infra.db import Database
from libs.infra.store import EVENTS_TABLE, EventsBackup

__all__ = ["backup", "restore", "BACKED_UP", "BackupError", "RestoreRefused"]

SCHEMA = "public"

#: the tables a backup holds, in the order a restore loads them (foreign keys: users → strategies → api_keys)
BACKED_UP: tuple[str, ...] = (
    "schema_migrations",
    "botranks_meta",
    EVENTS_TABLE,
    "users",
    "strategies",
    "strategy_tombstones",
    "api_keys",
    "follows",
    "webhooks",
    "strategy_updates",
    "prices",
    "splits",
    "price_updates",
    "market_data_symbols",
    "symbol_currencies",
)
#: without these an archive is not a BotRanks backup (the others are absent from older schemas)
REQUIRED = ("schema_migrations", "botranks_meta", EVENTS_TABLE)
#: tables whose rows a fresh schema has: replaced by the backup's (not a sign of a used database)
SEEDED = ("schema_migrations", "botranks_meta")

COPY_CHUNK = 1 << 20
LOCK_TIMEOUT = "10s"


class BackupError(RuntimeError):
    """A backup or restore that could not be done; the message says why (for the CLI to print)."""


class RestoreRefused(BackupError):
    """The target database is not empty: nothing was changed."""


# ---------------------------------------------------------------- backup


def backup(database_url: str, path: Path) -> dict:
    """Dump the tables that cannot be derived (``BACKED_UP``) of ``database_url`` to ``path``
    (pg_dump's custom format), in one snapshot; returns a summary.

    The file appears at ``path`` only once complete (written beside it, then renamed): a failed
    backup never leaves a truncated file, nor destroys an older one of the same name. It is
    readable by its owner only (0600): it holds the password and API-key hashes.
    """
    path = Path(path)
    if path.is_dir():
        raise BackupError(f"{path} is a directory: give the backup file's name")
    path.parent.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(database_url, autocommit=True) as conn:
        server_major = conn.info.server_version // 10000
        pg_dump = _pg_dump_for(server_major)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            # one REPEATABLE READ snapshot, exported to pg_dump: the counts below are those of the dump
            with schema.snapshot(conn) as snapshot:  # it may end once pg_dump is done with it
                present = schema.existing_tables(conn, BACKED_UP)
                missing = [t for t in REQUIRED if t not in present]
                if missing:
                    raise BackupError(f"not a BotRanks database (no table {', '.join(missing)}): nothing to back up")
                counts = schema.row_counts(conn, present)
                events_of = EventsBackup(conn)
                events, last_id = events_of.events()
                store_id = events_of.store_id()
                version = schema.applied_version(conn)
                conninfo, env = _libpq_target(database_url)
                argv = [
                    str(pg_dump),
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    "--strict-names",
                    f"--snapshot={snapshot}",
                    f"--file={tmp}",
                    f"--dbname={conninfo}",
                ]
                argv += [f"--table={SCHEMA}.{table}" for table in present]
                _run(argv, env, "pg_dump")
            entries = _archive_toc(_newest("pg_restore"), tmp)
            dumped = {e["name"] for e in entries if e["type"] == "TABLE DATA"}
            if dumped != set(present):
                raise BackupError(f"pg_dump wrote the data of {sorted(dumped)}, expected {sorted(present)}")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "tables": counts,
        "events": events,
        "last_notification_id": last_id,
        "store_id": store_id,
        "schema_version": version,
        "pg_dump": _version_string(pg_dump),
    }


# ---------------------------------------------------------------- restore


def restore(database_url: str, path: Path) -> dict:
    """Load a backup of :func:`backup` into the EMPTY database ``database_url``; returns a summary.

    Refuses (:class:`RestoreRefused`, nothing changed) a database that holds data. Creates the
    schema with ``Database.create_tables()``, then loads the archive's data in one transaction
    (all or nothing) and resets the relay position. The read models are left empty: run
    ``botranks projector rebuild`` next.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    pg_restore = _newest("pg_restore")
    entries = _archive_toc(pg_restore, path)
    tables = [e["name"] for e in entries if e["type"] == "TABLE DATA"]
    unknown = sorted(set(tables) - set(BACKED_UP))
    missing = [t for t in REQUIRED if t not in tables]
    if missing or unknown:
        problem = f"no data for {', '.join(missing)}" if missing else f"unknown tables {', '.join(unknown)}"
        raise BackupError(f"{path} is not a BotRanks backup ({problem})")
    sequences = {e["name"] for e in entries if e["type"] == "SEQUENCE SET"}

    with psycopg.connect(database_url, autocommit=True) as conn:
        _refuse_unless_empty(conn, schema_known=False)  # before anything is created
    db = Database(database_url, pool_size=1, max_overflow=0)
    try:
        db.create_tables()
    finally:
        db.close()

    # pg_restore -L restores the listed entries in the list's order: table data, then sequences
    order = {name: i for i, name in enumerate(BACKED_UP)}
    chosen = sorted((e for e in entries if e["type"] == "TABLE DATA"), key=lambda e: order[e["name"]])
    chosen += [e for e in entries if e["type"] == "SEQUENCE SET"]
    with tempfile.TemporaryDirectory(prefix="botranks-restore-") as work:
        listing = Path(work) / "toc.list"
        listing.write_text("".join(e["line"] + "\n" for e in chosen))
        stderr_path = Path(work) / "pg_restore.err"
        with psycopg.connect(database_url) as conn, open(stderr_path, "wb") as stderr:
            with conn.transaction():
                schema.lock_tables(conn, (*BACKED_UP, "relay_position"), LOCK_TIMEOUT)
                _refuse_unless_empty(conn, schema_known=True)  # again, under the lock
                events_of = EventsBackup(conn)
                events_of.forget_store_id()
                schema.forget_versions(conn)
                process = subprocess.Popen(
                    [str(pg_restore), "--data-only", f"--use-list={listing}", "--file=-", str(path)],
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                )
                assert process.stdout is not None  # stdout=PIPE
                try:
                    loaded, set_sequences = _load_script(conn, process.stdout, set(tables), sequences)
                finally:
                    process.stdout.close()
                    returncode = process.wait()
                if returncode != 0:
                    raise BackupError(f"pg_restore failed ({returncode}): {_tail(stderr_path)}")
                if loaded != set(tables) or set_sequences != sequences:
                    raise BackupError(
                        f"incomplete archive: loaded {sorted(loaded)} and sequences"
                        f" {sorted(set_sequences)}, its table of contents lists {sorted(tables)}"
                        f" and {sorted(sequences)}"
                    )
                backup_version = schema.applied_version(conn)
                # the schema in force is this code's (step 1): record the versions the backup predates
                schema.record_all_versions(conn)
                if events_of.store_ids() != 1:
                    raise BackupError("the backup's botranks_meta does not hold exactly one store id")
                events_of.reset_relay_position()
                counts = schema.row_counts(conn, tables)
                events, last_id = events_of.events()
                store_id = events_of.store_id()
    return {
        "path": str(path),
        "tables": counts,
        "events": events,
        "last_notification_id": last_id,
        "store_id": store_id,
        "schema_version": backup_version,
        "next": "botranks projector rebuild",
    }


_COPY_RE = re.compile(r"^COPY (\w+)\.(\w+) \((.*)\) FROM stdin;$")
_SETVAL_RE = re.compile(r"^SELECT pg_catalog\.setval\('(\w+)\.(\w+)', (\d+), (true|false)\);$")
_SET_RE = re.compile(r"^SET (\w+) = (.*);$")


def _load_script(conn: psycopg.Connection, script, tables: set[str], sequences: set[str]) -> tuple[set[str], set[str]]:
    """Execute pg_restore's data-only SQL (``--file=-``) in ``conn``'s transaction: COPY blocks
    streamed with psycopg's COPY, ``setval`` calls, the client encoding. Any other statement is
    refused: a data-only script of a BotRanks backup has no other kind. Returns what was loaded."""
    loaded: set[str] = set()
    set_sequences: set[str] = set()
    lines: Iterator[bytes] = iter(script)
    for raw in lines:
        line = raw.decode("utf-8").strip()
        if not line or line.startswith("--") or line.startswith("\\"):  # comments; psql's \restrict
            continue
        if match := _COPY_RE.match(line):
            namespace, table = match.group(1), match.group(2)
            if namespace != SCHEMA or table not in tables or table in loaded:
                raise BackupError(f"unexpected data in the backup: {namespace}.{table}")
            with schema.copy_in(conn, table, _columns(match.group(3))) as copy:
                chunk: list[bytes] = []
                size = 0
                for row in lines:
                    if row in (b"\\.\n", b"\\.\r\n", b"\\."):
                        break
                    chunk.append(row)
                    size += len(row)
                    if size >= COPY_CHUNK:
                        copy.write(b"".join(chunk))
                        chunk, size = [], 0
                else:
                    raise BackupError(f"the backup's data for {table} is truncated")
                if chunk:
                    copy.write(b"".join(chunk))
            loaded.add(table)
            if table == "schema_migrations":  # first in the list: stop before loading anything big
                version = schema.applied_version(conn)
                if version > schema.NEWEST:
                    raise BackupError(
                        f"the backup has schema version {version}, this BotRanks knows"
                        f" {schema.NEWEST}: restore it with a newer BotRanks"
                    )
        elif match := _SETVAL_RE.match(line):
            namespace, sequence, value, called = match.groups()
            if namespace != SCHEMA or sequence not in sequences:
                raise BackupError(f"unexpected sequence in the backup: {namespace}.{sequence}")
            schema.set_sequence(conn, sequence, int(value), called == "true")
            set_sequences.add(sequence)
        elif match := _SET_RE.match(line):
            if match.group(1) == "client_encoding":  # the encoding of the COPY data that follows
                schema.set_client_encoding(conn, match.group(2).strip("'"))
            # other session settings (timeouts, search_path...) do not matter to qualified COPYs
        elif line.startswith("SELECT pg_catalog.set_config("):
            continue
        else:
            raise BackupError(f"unexpected statement in the backup: {line[:120]}")
    return loaded, set_sequences


def _refuse_unless_empty(conn: psycopg.Connection, *, schema_known: bool) -> None:
    """Raise RestoreRefused unless the database has no tables, or only a BotRanks schema without data."""
    if not schema_known and "botranks_meta" not in schema.existing_tables(conn, ["botranks_meta"]):
        others = schema.some_relations(conn, 5)
        if others:
            raise RestoreRefused(
                "refusing to restore: the database is not empty and holds no BotRanks schema"
                f" (tables {', '.join(others)}...); restore into a new, empty"
                " database"
            )
        return
    present = schema.existing_tables(conn, [t for t in BACKED_UP if t not in SEEDED])
    used = {table: n for table, n in schema.row_counts(conn, present, limit=1).items() if n}
    if used:
        events = f" ({EventsBackup(conn).events()[0]} stored events)" if EVENTS_TABLE in used else ""
        raise RestoreRefused(
            f"refusing to restore: the database already holds data{events} in"
            f" {', '.join(sorted(used))}; restore into a new, empty database"
        )


# ---------------------------------------------------------------- helpers


def _columns(listed: str) -> list[str]:
    """The column names of pg_dump's ``COPY t (a, "b") FROM stdin`` line."""
    return [c.strip().strip('"') for c in listed.split(",")]


def _libpq_target(database_url: str) -> tuple[str, dict[str, str]]:
    """A conninfo string without the password (the command line is visible in ps) and an
    environment carrying it as PGPASSWORD."""
    params = {k: v for k, v in conninfo_to_dict(database_url).items() if v is not None}
    password = params.pop("password", "")
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def _run(argv: list[str], env: dict[str, str] | None, what: str) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
    except OSError as exc:
        raise BackupError(f"{what} could not run ({argv[0]}): {exc}") from None
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done


def _tail(path: Path) -> str:
    return path.read_text(errors="replace").strip()[-2000:]


def _candidates(tool: str) -> list[Path]:
    """``tool`` on PATH, then pgserver's bundled one (``pgserver/pginstall/bin``), those that exist."""
    found = []
    on_path = shutil.which(tool)
    if on_path:
        found.append(Path(on_path))
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "pginstall" / "bin" / tool
        if bundled.exists():
            found.append(bundled)
    return found


_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def _major(binary: Path) -> int | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_RE.search(out)
    return int(match.group(1)) if match else None


def _version_string(binary: Path) -> str:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    return f"{binary} ({out.strip()})"


def _pg_dump_for(server_major: int) -> Path:
    """The pg_dump on PATH if its major version is at least the server's, else pgserver's."""
    seen = []
    for binary in _candidates("pg_dump"):
        major = _major(binary)
        seen.append(f"{binary} ({major})")
        if major is not None and major >= server_major:
            return binary
    raise BackupError(
        f"no pg_dump of PostgreSQL {server_major} or newer (found: {', '.join(seen) or 'none'});"
        " install the server's client tools, or `pip install pgserver`"
    )


def _newest(tool: str) -> Path:
    ranked = [(major, binary) for binary in _candidates(tool) if (major := _major(binary)) is not None]
    if not ranked:
        raise BackupError(f"no {tool} found: install PostgreSQL's client tools, or `pip install pgserver`")
    return max(ranked, key=lambda item: item[0])[1]


_TOC_RE = re.compile(r"^\d+; \d+ \d+ (TABLE DATA|SEQUENCE SET) (\S+) (\S+)(?: .*)?$")


def _archive_toc(pg_restore: Path, path: Path) -> list[dict[str, Any]]:
    """The archive's table-data and sequence entries: type, schema, name and the TOC line itself."""
    listing = _run([str(pg_restore), "--list", str(path)], None, "pg_restore --list").stdout
    entries = []
    for line in listing.splitlines():
        if match := _TOC_RE.match(line):
            kind, namespace, name = match.groups()
            if namespace != SCHEMA:
                raise BackupError(f"unexpected schema {namespace} in {path}")
            entries.append({"type": kind, "schema": namespace, "name": name, "line": line})
    return entries
