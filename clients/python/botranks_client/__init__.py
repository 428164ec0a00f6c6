"""BotRanks API v1 client: retry-safe writes, typed reads, an optional durable outbox.

from botranks_client import Client
with Client("http://127.0.0.1:8000", api_key, strategy_id) as client:
    client.submit_orders([{"symbol": "AAPL", "side": "buy", "quantity": "100", "price": "189.42"}])
    print(client.state().nav)
"""

from botranks_domain.model import CashEvent, CashIn, Order, OrderIn, PositionIn, SnapshotIn
from botranks_domain.views import (
    CashPage,
    CorporateActions,
    NavSeries,
    OrdersPage,
    Performance,
    ReconciliationEntry,
    ReconciliationPage,
    SnapshotOutcome,
    StateView,
)

from ._core import MAX_BATCH, parse_retry_after
from .aio import AsyncClient
from .client import USER_AGENT, Client, __version__
from .errors import (
    ApiError,
    BadRequest,
    BotRanksError,
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidOrder,
    NotFound,
    OutboxTimeout,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
    Unprocessable,
)
from .results import CashResult, DeadLetter, Enqueued, SubmitResult

__all__ = [
    "Client",
    "AsyncClient",
    "MAX_BATCH",
    "SubmitResult",
    "CashResult",
    "Enqueued",
    "DeadLetter",
    "BotRanksError",
    "ApiError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "Unprocessable",
    "RateLimited",
    "ServerError",
    "TransportError",
    "InvalidOrder",
    "InvalidInput",
    "OutboxTimeout",
    "UnexpectedResponse",
    "OrderIn",
    "Order",
    "CashIn",
    "CashEvent",
    "PositionIn",
    "SnapshotIn",
    "SnapshotOutcome",
    "StateView",
    "NavSeries",
    "Performance",
    "ReconciliationEntry",
    "CorporateActions",
    "OrdersPage",
    "CashPage",
    "ReconciliationPage",
    "USER_AGENT",
    "__version__",
    "parse_retry_after",
]
