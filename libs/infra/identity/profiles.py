"""People's side of identity: accounts (``users``) with their public handle, and an owner's public record
(docs/NOTES.md "Profiles"). A handle is stored lower-cased (``botranks_domain.profiles``) under a unique
index, so "taken" is the database's answer, not a read before the write."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresDatastore

from botranks_domain.accounts import OwnerRecord, User
from botranks_domain.errors import Conflict, NotFound, RuleBroken
from botranks_domain.profiles import check_description, normalize_handle, normalize_tags

from ..pg import one, reading

_USER = "id, email, created_at, handle"


def _handle(raw: str | None) -> str | None:
    try:
        return None if raw is None else normalize_handle(raw)
    except ValueError as err:
        raise RuleBroken(str(err)) from None


def _taken(err: Exception, handle: str | None) -> Conflict:
    if handle is not None and "users_handle_idx" in str(err):
        return Conflict(f"handle: {handle!r} is taken; choose another")
    return Conflict("An account with this email already exists")


class ProfileStore:
    """Accounts and handles (a part of :class:`~.accounts.Identity`)."""

    datastore: PostgresDatastore

    def user_id(self, email: str) -> UUID | None:
        with reading(self.datastore) as curs:
            row = curs.execute("SELECT id FROM users WHERE lower(email) = lower(%s)", (email,)).fetchone()
        return None if row is None else row["id"]

    def insert_user(self, email: str, password_hash: str, handle: str | None = None) -> User:
        """A new account (409 when the email, any case, or the handle is taken)."""
        handle = _handle(handle)
        try:
            with self.datastore.transaction(commit=True) as curs:
                row = one(
                    curs.execute(
                        "INSERT INTO users (id, email, password_hash, handle) VALUES (%s, %s, %s, %s)"
                        f" RETURNING {_USER}",
                        (uuid.uuid4(), email, password_hash, handle),
                    )
                )
        except (IntegrityError, psycopg.errors.UniqueViolation) as err:
            raise _taken(err, handle) from None
        return User(**row)

    def user(self, user_id: UUID) -> User:
        with reading(self.datastore) as curs:
            row = curs.execute(f"SELECT {_USER} FROM users WHERE id = %s", (user_id,)).fetchone()
        if row is None:
            raise NotFound("No such account")
        return User(**row)

    def set_handle(self, user_id: UUID, handle: str | None) -> User:
        """Choose, change or (None) drop the account's public handle (409 when another account has it). The
        board shows the handle beside each of the owner's strategies: each is recorded in
        ``strategy_updates`` in the same transaction, so the projector refreshes their rows."""
        handle = _handle(handle)
        try:
            with self.datastore.transaction(commit=True) as curs:
                row = curs.execute(
                    f"UPDATE users SET handle = %s WHERE id = %s RETURNING {_USER}", (handle, user_id)
                ).fetchone()
                if row is None:
                    raise NotFound("No such account")
                curs.execute(
                    "INSERT INTO strategy_updates (strategy_id, benchmark_changed)"
                    " SELECT id, false FROM strategies WHERE owner_id = %s",
                    (user_id,),
                )
        except (IntegrityError, psycopg.errors.UniqueViolation) as err:
            raise _taken(err, handle) from None
        return User(**row)

    def describe(self, strategy_id: UUID, description: str, tags: list[str]) -> None:
        """The operator's side (``botranks demo``): set a strategy's description and tags, whoever owns it;
        recorded in ``strategy_updates`` when it changes something (the board shows the tags)."""
        check_description(description)
        tags = normalize_tags(tags)
        with self.datastore.transaction(commit=True) as curs:
            changed = curs.execute(
                "UPDATE strategies SET description = %s, tags = %s WHERE id = %s"
                " AND (description <> %s OR tags <> %s::text[]) RETURNING id",
                (description, tags, strategy_id, description, tags),
            ).fetchone()
            if changed is not None:
                curs.execute(
                    "INSERT INTO strategy_updates (strategy_id, benchmark_changed) VALUES (%s, false)", (strategy_id,)
                )

    def owner_record_by_handle(self, handle: str) -> OwnerRecord | None:
        """An owner's public record: the handle, when they joined, how many strategies they have started
        (public, private and deleted ones) and the public ones (oldest first). None for an unknown handle."""
        with reading(self.datastore) as curs:
            row: dict[str, Any] | None = curs.execute(
                "SELECT u.handle, u.created_at, u.strategies_deleted AS deleted,"
                " count(s.id) FILTER (WHERE s.visibility = 'public') AS public,"
                " count(s.id) FILTER (WHERE s.visibility <> 'public') AS private,"
                " coalesce(array_agg(s.id ORDER BY s.created_at, s.id) FILTER (WHERE s.visibility = 'public'), '{}')"
                " AS public_ids FROM users AS u LEFT JOIN strategies AS s ON s.owner_id = u.id"
                " WHERE u.handle = %s GROUP BY u.id",
                (handle.lower(),),
            ).fetchone()
        if row is None:
            return None
        joined: datetime = row["created_at"]
        return OwnerRecord(
            handle=row["handle"],
            joined=joined.date(),
            started=row["public"] + row["private"] + row["deleted"],
            public=row["public"],
            private=row["private"],
            deleted=row["deleted"],
            public_ids=row["public_ids"],
        )
