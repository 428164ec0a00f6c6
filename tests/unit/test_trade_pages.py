"""The strategy page's histogram of trades' returns (services/query_api/trade_pages.py): every trade in
one bin, 0 an edge (a bin holds wins or losses, never both), outliers in the end bins, a nice width."""

from __future__ import annotations

import math
import random

import pytest

from botranks_domain.errors import BadParameter
from services.query_api.trade_pages import histogram, trades_page


def _sign(r: float) -> int:
    return (r > 0) - (r < 0)


@pytest.mark.parametrize("seed", range(20))
def test_every_return_lands_in_one_bin_and_zero_is_an_edge(seed):
    rng = random.Random(seed)
    n = rng.choice([1, 3, 40, 99, 100, 500])
    scale = rng.choice([0.001, 0.05, 0.4, 3.0])
    returns = [rng.gauss(rng.uniform(-0.5, 0.5) * scale, scale) for _ in range(n)]
    if seed % 4 == 0:
        returns.append(0.0)
    h = histogram([(r, _sign(r)) for r in returns])
    assert h is not None and h.trades == len(returns)
    assert sum(b.count for b in h.bins) == len(returns)
    assert sum(b.wins for b in h.bins) == sum(r > 0 for r in returns)
    assert sum(b.losses for b in h.bins) == sum(r < 0 for r in returns)
    mantissa = h.width / 10 ** math.floor(math.log10(h.width))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5, 10))
    for b in h.bins:
        assert not (b.wins and b.losses), b
        assert math.isclose(b.hi - b.lo, h.width)
        assert math.isclose(b.lo / h.width, round(b.lo / h.width), abs_tol=1e-9)  # edges on multiples
    assert len(h.bins) <= 60
    assert h.peak == max(b.count for b in h.bins)
    bars = list(h.bars())
    assert all(0 <= bar["y"] and bar["y"] + bar["h"] <= 100.001 for bar in bars)
    assert all(0 <= x <= 100.001 for x, _ in h.ticks)


def test_outliers_fall_in_the_end_bins():
    returns = [0.01 * (i % 10 - 5) for i in range(200)] + [25.0, -0.99]
    h = histogram([(r, _sign(r)) for r in returns])
    assert h.bins[-1].open_hi and h.bins[0].open_lo
    assert len(h.bins) < 40  # the outliers do not stretch the bins
    assert "and above" in h.bins[-1].label and "below" in h.bins[0].label


def test_no_trades_no_histogram_and_one_trade_one_bin():
    assert histogram([]) is None
    h = histogram([(0.05, 1)])
    assert [b.wins for b in h.bins] == [1] and h.peak == 1


@pytest.mark.parametrize("raw, page", [(None, 1), ("", 1), ("3", 3), (" 7 ", 7)])
def test_trades_page(raw, page):
    assert trades_page(raw) == page


@pytest.mark.parametrize("raw", ["0", "-1", "x", "1.5", "1000001"])
def test_bad_trades_page(raw):
    with pytest.raises(BadParameter):
        trades_page(raw)
