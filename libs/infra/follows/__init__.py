"""Follows: owner of ``follows``, ``webhooks`` and ``webhook_deliveries`` (``store``, DDL in ``ddl``);
what a follower is told about a strategy (``events``: the Atom feed's entries and the webhooks'
events), how a delivery is signed (``signing``) and where it may go (``guard``). See
docs/NOTES.md "Follow: the Atom feed and webhooks"."""

from .ddl import MIGRATIONS
from .store import Follows

__all__ = ["MIGRATIONS", "Follows"]
