"""The read model: owner of every ``rm_*`` table, the projector's tracking rows and its outbox cursors.

Split by side: :class:`LedgerReader` (``reader``) is what the APIs and pages read;
:class:`ReadModelTracking` (``tracking``) holds the projector's positions and opens its
transactions, each a :class:`LedgerWriter` (``writer``); ``tables`` names the tables once;
``ddl`` creates them (``MIGRATIONS``, by migration version).
Nothing else runs SQL on these tables.
"""

from .ddl import MIGRATIONS
from .ledger_row import LedgerRow, StrategyReads
from .reader import LedgerReader, stream_chain_events, stream_nav_rows
from .tables import UNKNOWN_STRATEGY
from .tracking import ReadModelTracking
from .writer import LedgerWriter

__all__ = [
    "MIGRATIONS",
    "LedgerReader",
    "LedgerRow",
    "LedgerWriter",
    "ReadModelTracking",
    "StrategyReads",
    "UNKNOWN_STRATEGY",
    "stream_chain_events",
    "stream_nav_rows",
]
