"""The demo's sample trading bots, over the synthetic market of ``synthetic.py``. ``sample_bot_orders``
replays a simple monthly momentum / short-term-reversal bot over those bars and returns the API
payloads it would send, in time order; ``SAMPLE_BOTS`` are the demo's public bots (momentum, mean
reversion, index buy-and-hold, crypto trend, low-risk income, concentrated tech, a scalper, a
trend follower and a EUR-based bot), each a deterministic function of the bars. They only go
long and never spend more cash than they hold (the momentum bot's small shorts excepted). Their
signals (momentum, look-backs, averages) read split-ADJUSTED closes, so a split is no crash to
them; their orders carry the day's unadjusted close and quantities in the day's share units, and
their holdings convert at the start of an ex-date exactly as the ledger does (quantity x to/from,
no cash in lieu). The concentrated tech bot holds DEMO-NVDA through the split without trading it
that day.

The package: ``market`` (the bars as the bots see them), ``account`` (a bot's cash account and
its payloads), ``momentum`` (the first bot), ``other_bots`` (five more), ``trade_styles`` (the
scalper and the trend follower, whose trade statistics differ on purpose), ``euro_bot`` (the bot
whose base currency is EUR: it trades a EUR stock and two USD ones at the ledger's EUR/USD rate);
here, the roster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from botranks_domain.bars import Bar

from ..synthetic import DEMO_SPLIT
from .euro_bot import euro_orders
from .momentum import sample_bot_orders
from .other_bots import crypto_trend_orders, income_orders, index_orders, mean_reversion_orders, tech_orders
from .trade_styles import scalper_orders, trend_follower_orders

__all__ = ["sample_bot_orders", "SampleBot", "SAMPLE_BOTS", "sample_bots"]


@dataclass(frozen=True)
class SampleBot:
    """A public demo bot: its name says "(demo)" (short enough for a leaderboard row), its benchmark
    and every symbol it trades are synthetic ``DEMO-`` ones."""

    slug: str
    name: str
    benchmark: str
    risk: str
    rules: str
    orders: Callable[[list[Bar]], list[dict[str, Any]]]
    #: what its public page shows of its positions and orders (none, delayed, live)
    show_positions: str = "none"
    #: the currency of its cash, fees and NAV (its strategy's base currency)
    base_currency: str = "USD"


class Described(Protocol):
    """A sample or a live demo bot (frozen dataclasses: read-only attributes)."""

    @property
    def slug(self) -> str: ...
    @property
    def risk(self) -> str: ...
    @property
    def rules(self) -> str: ...


def bot_profile(bot: Described) -> tuple[str, list[str]]:
    """A demo bot's profile (issue 24): its description (Markdown: its rules and risk, and that its prices
    are synthetic) and its tags (what kind of bot it is)."""
    description = (
        f"A **sample bot** of `botranks demo`: {bot.rules}.\n\n"
        f"Risk: *{bot.risk}*. It trades synthetic `DEMO-` prices, clearly not a market's, so its record"
        " shows what the pages do, not what to buy."
    )
    return description, list(TAGS.get(bot.slug, ()))


#: the demo bots' tags, by slug
TAGS: dict[str, tuple[str, ...]] = {
    "momentum": ("momentum", "rotation", "monthly"),
    "meanrev": ("mean-reversion", "bi-weekly"),
    "index": ("buy-and-hold", "index"),
    "crypto": ("trend-following", "weekly"),
    "income": ("dividends", "low-risk"),
    "tech": ("concentrated", "tech"),
    "scalper": ("dip-buying", "short-term"),
    "trend": ("breakout", "trend-following"),
    "euro": ("balanced", "multi-currency"),
    "livedca": ("dollar-cost-averaging", "hourly", "reported-live"),
    "live5050": ("rebalancing", "hourly", "reported-live"),
}


SAMPLE_BOTS: tuple[SampleBot, ...] = (
    SampleBot(
        "momentum",
        "Momentum rotation (demo)",
        "DEMO-SPY",
        "medium",
        "monthly: SPY/KO core, the two strongest of AAPL, MSFT, NVDA, XOM, BTC; a small short now and then",
        sample_bot_orders,
        show_positions="live",
    ),
    SampleBot(
        "meanrev",
        "Mean reversion (demo)",
        "DEMO-SPY",
        "medium",
        "every other week: the two biggest 10-day losers among five stocks, else cash",
        mean_reversion_orders,
    ),
    SampleBot(
        "index",
        "Index buy & hold (demo)",
        "DEMO-SPY",
        "medium",
        "all in SPY on day one, dividends reinvested",
        index_orders,
        show_positions="delayed",
    ),
    SampleBot(
        "crypto",
        "Crypto trend (demo)",
        "DEMO-BTC-USD",
        "high",
        "weekly: 95 % BTC above its 30-day average, else cash",
        crypto_trend_orders,
    ),
    SampleBot(
        "income",
        "Dividend income (demo)",
        "DEMO-SPY",
        "low",
        "50 % KO/XOM/SPY rebalanced quarterly, the rest in cash earning 4 %",
        income_orders,
    ),
    SampleBot(
        "tech",
        "Concentrated tech (demo)",
        "DEMO-SPY",
        "high",
        "fully invested in NVDA, AAPL and MSFT from 2023, rebalanced monthly;"
        f" holds NVDA through its {DEMO_SPLIT.ratio.replace(':', '-for-')} split"
        f" of {DEMO_SPLIT.ex_date.isoformat()}",
        tech_orders,
        show_positions="live",
    ),
    SampleBot(
        "scalper",
        "Dip scalper (demo)",
        "DEMO-SPY",
        "medium",
        "daily: buys SPY, KO or MSFT after a 0.8 % down day; out at +0.6 %, -3 % or after 10 days",
        scalper_orders,
        show_positions="live",
    ),
    SampleBot(
        "trend",
        "Breakout trend (demo)",
        "DEMO-SPY",
        "high",
        "daily: buys AAPL, NVDA, XOM or BTC at a 50-day high, sells at a 20-day low",
        trend_follower_orders,
        show_positions="live",
    ),
    SampleBot(
        "euro",
        "Euro balanced (demo)",
        "DEMO-SPY",
        "medium",
        "in EUR, monthly: 40 % SAP (EUR), 30 % AAPL and 20 % KO (USD, bought at the day's EUR/USD), 10 % cash",
        euro_orders,
        show_positions="live",
        base_currency="EUR",
    ),
)


def sample_bots(bars: list[Bar]) -> list[tuple[SampleBot, list[dict[str, Any]]]]:
    """Every sample bot with the payloads it would send over ``bars``."""
    return [(bot, bot.orders(bars)) for bot in SAMPLE_BOTS]
