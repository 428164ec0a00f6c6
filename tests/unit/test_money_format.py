"""Money on the pages (issue 23): ``amount`` shows a figure with its currency (Babel's en_US symbol
and the currency's own digits), signed as ``money`` signs, ``—`` for nothing; the strategy template uses it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from jinja2 import Environment, FileSystemLoader

from services.query_api import assets, formatting
from services.query_api.formatting import (
    DASH,
    MINUS,
    amount,
    amount_html,
    currency_digits,
    money,
)

NBSP = "\u00a0"


@pytest.mark.parametrize(
    "value, currency, signed, shown",
    [
        (Decimal("1234567.5"), "USD", False, "$1,234,567.50"),
        (Decimal("1234.5"), "EUR", False, "€1,234.50"),
        (Decimal("1234.5"), "GBP", True, "+£1,234.50"),
        (Decimal("-1234.5"), "EUR", False, f"{MINUS}€1,234.50"),
        (Decimal("-1234.5"), "EUR", True, f"{MINUS}€1,234.50"),
        # JPY has no minor unit: whole yen, rounded half-even like money()
        (Decimal("1234567.5"), "JPY", False, "¥1,234,568"),
        (Decimal("1234566.5"), "JPY", False, "¥1,234,566"),
        (Decimal("-0.4"), "JPY", True, "¥0"),  # rounds to nothing: no sign
        (Decimal("-0.004"), "USD", False, "$0.00"),
        (Decimal("0.004"), "USD", True, "$0.00"),
        (Decimal("2.675"), "EUR", False, "€2.68"),
        (Decimal("2.665"), "EUR", False, "€2.66"),
        (Decimal("1.0005"), "BHD", False, f"BHD{NBSP}1.000"),  # three digits; a code keeps a space
        (Decimal("12"), "CHF", True, f"+CHF{NBSP}12.00"),
        (Decimal("-12"), "CAD", False, f"{MINUS}CA$12.00"),
        (7, "USD", False, "$7.00"),
        (None, "EUR", False, DASH),
        (None, "EUR", True, DASH),
        (Decimal("NaN"), "EUR", False, DASH),
        (Decimal("Infinity"), "USD", True, DASH),
    ],
)
def test_amount(value, currency, signed, shown):
    assert amount(value, currency, signed) == shown


def test_a_cards_amount_may_wrap_after_the_currency_only():
    assert amount_html(Decimal("-1234.5"), "CHF", True) == f'<span class="ccy">{MINUS}CHF{NBSP}</span><wbr>1,234.50'
    assert amount_html(Decimal("1500"), "JPY") == '<span class="ccy">¥</span><wbr>1,500'
    assert amount_html(None, "EUR") == DASH and amount_html(Decimal("1"), None) == "1.00"
    for value, currency in ((Decimal("98765407.42"), "CHF"), (Decimal("-0.001"), "EUR"), (Decimal("7"), "GBP")):
        shown = amount_html(value, currency, True)
        text = shown.striptags().replace(" ", NBSP) if currency == "CHF" else shown.striptags()
        assert text == amount(value, currency, True)


def test_amount_without_a_currency_is_money():
    for value in (Decimal("-1234.567"), Decimal("0.001"), None):
        assert amount(value, None) == money(value) and amount(value, "", True) == money(value, signed=True)


def test_amount_is_exact_for_long_decimals():
    # 28+ significant digits: a float would lose the last cents
    assert amount(Decimal("12345678901234567890123.455"), "USD") == "$12,345,678,901,234,567,890,123.46"


def test_currency_digits():
    assert [currency_digits(c) for c in ("USD", "EUR", "JPY", "BHD", "KRW")] == [2, 2, 0, 3, 0]


def test_the_filters_are_registered_for_the_templates():
    assert formatting.FILTERS["amount"] is amount
    env = Environment(loader=FileSystemLoader(assets.TEMPLATES_DIR))
    env.filters.update(formatting.FILTERS)
    source = env.from_string("{{ x|amount(c) }} {{ y|amount(c, True) }}")
    assert source.render(x=Decimal("1500"), y=Decimal("-2"), c="JPY") == f"¥1,500 {MINUS}¥2"
