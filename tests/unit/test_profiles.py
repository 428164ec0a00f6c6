"""Issue 24, profiles: handles, tags, derived markets, equity brackets (botranks_domain.profiles) and the
description's safe rendering (services/query_api/profiles.py)."""

from __future__ import annotations

import re
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from botranks_domain.accounts import HandleIn, Registration, StrategySettingsIn
from botranks_domain.profiles import (
    EQUITY_BRACKETS,
    MARKETS,
    bracket_label,
    equity_bracket,
    market_of,
    markets_of,
    normalize_handle,
    normalize_tags,
)
from services.query_api.profiles import LINK_REL, description_html

#: the only tags CommonMark without raw HTML or images can produce
ALLOWED_TAGS = {"p", "em", "strong", "a", "code", "pre", "ul", "ol", "li", "blockquote", "h1", "h2", "h3", "h4",
                "h5", "h6", "hr", "br"}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "stored"), [("Alice", "alice"), ("bob_42", "bob_42"), ("Quant-Desk", "quant-desk"), ("x" * 30, "x" * 30)]
)
def test_handles_are_stored_lower_cased(raw, stored):
    assert normalize_handle(raw) == stored
    assert msgspec.convert({"handle": raw}, HandleIn).handle == raw  # the pattern admits it


@pytest.mark.parametrize("raw", ["ab", "9lives", "_x_y", "has space", "x" * 31, "émile", "a@b.c", ""])
def test_what_is_not_a_handle_is_refused_naming_the_field(raw):
    with pytest.raises(ValueError, match="handle"):
        normalize_handle(raw)
    with pytest.raises(msgspec.ValidationError, match="handle"):
        msgspec.convert({"email": "a@b.co", "password": "p" * 12, "handle": raw}, Registration)


@pytest.mark.parametrize("raw", ["admin", "Botranks", "ROOT", "api"])
def test_reserved_handles(raw):
    with pytest.raises(ValueError, match="reserved"):
        normalize_handle(raw)


def test_tags_are_normalized_deduplicated_and_bounded():
    assert normalize_tags([" Trend Following ", "US", "us", "mean-reversion"]) == [
        "trend-following",
        "us",
        "mean-reversion",
    ]
    assert msgspec.convert({"tags": ["A B"]}, StrategySettingsIn).tags == ["a-b"]
    for bad in (["ok", "not ok!"], ["-lead"], ["x" * 25], [f"t{i}" for i in range(9)]):
        with pytest.raises(ValueError, match="tags"):
            normalize_tags(bad)
    with pytest.raises(msgspec.ValidationError, match="description"):
        msgspec.convert({"description": "bell \x07"}, StrategySettingsIn)


@pytest.mark.parametrize(
    ("symbol", "currency", "market"),
    [
        ("AAPL", "USD", "us-equities"),
        ("BRK.B", "USD", "us-equities"),
        ("SAP", "EUR", "equities"),
        ("BTC-USD", "USD", "crypto"),
        ("ETH-EUR", "EUR", "crypto"),
        ("DEMO-BTC-USD", "USD", "crypto"),
        ("X:BTCUSD", "USD", "crypto"),
        ("C:EURUSD", "USD", "forex"),
        ("O:SPY251219C00500000", "USD", "options"),
        ("I:SPX", "USD", "indices"),
        ("^GSPC", "USD", "indices"),
        ("BRK-B", "USD", "us-equities"),  # a class share, not a pair: B is no currency
        ("DEMO-SPY", "USD", "us-equities"),
    ],
)
def test_markets_are_derived_from_the_symbol_and_its_currency(symbol, currency, market):
    assert market_of(symbol, currency) == market


def test_markets_of_a_strategy_are_a_set_in_a_fixed_order():
    found = markets_of(["C:EURUSD", "AAPL", "BTC-USD", "MSFT"], {"C:EURUSD": "USD"})
    assert found == ["us-equities", "crypto", "forex"] and found == [m for m in MARKETS if m in found]
    assert markets_of([], {}) == []


@given(st.decimals(min_value=-(10**9), max_value=10**12, allow_nan=False, allow_infinity=False, places=2))
def test_equity_brackets_partition_the_line(equity):
    i = equity_bracket(equity)
    assert i is not None and 0 <= i < len(EQUITY_BRACKETS)
    assert i == 0 or equity >= EQUITY_BRACKETS[i]
    assert i == len(EQUITY_BRACKETS) - 1 or equity < EQUITY_BRACKETS[i + 1]


def test_bracket_labels():
    assert equity_bracket(None) is None and bracket_label(None, "USD") is None
    assert bracket_label(equity_bracket(Decimal("100000")), "EUR") == "100k to 1M EUR"
    assert bracket_label(equity_bracket(Decimal("99999.99")), "USD") == "10k to 100k USD"
    assert bracket_label(equity_bracket(Decimal("-5")), "USD") == "under 10k USD"


def test_description_markdown_is_rendered_without_raw_html():
    html = description_html(
        "# Title\n\n*it* works <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "[site](https://example.com) [js](javascript:alert(1)) [data](data:text/html,hi) ![i](https://e.com/a.png)"
    )
    assert "<h1>Title</h1>" in html and "<em>it</em>" in html
    assert "<script" not in html and "&lt;script&gt;" in html and "<img" not in html
    assert f'<a href="https://example.com" rel="{LINK_REL}">site</a>' in html
    assert 'href="javascript:' not in html and 'href="data:' not in html


@given(st.text(max_size=300))
def test_no_text_renders_a_tag_or_attribute_outside_markdown(text):
    html = str(description_html(text))
    for tag, attrs in re.findall(r"<\s*/?\s*([A-Za-z][A-Za-z0-9]*)([^>]*)>", html):
        assert tag.lower() in ALLOWED_TAGS, (text, html)
        names = set(re.findall(r"\s([A-Za-z-]+)=", attrs))
        assert names <= {"href", "rel", "title", "class", "start"}, (text, html)
        if tag.lower() == "a" and "href" in names:
            assert f'rel="{LINK_REL}"' in attrs, (text, html)
