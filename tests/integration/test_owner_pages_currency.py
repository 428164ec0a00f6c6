"""The owner pages' base currency (issue 23): the create form and the settings form take it (any
ISO 4217 code in tender, typed or picked from the datalist), a code that is not one is the JSON
API's 422 naming ``base_currency`` with nothing created or changed. Driven like a browser through
the real command_api (the fixture and helpers of test_owner_pages)."""

from __future__ import annotations

import re
from uuid import UUID

import pytest

from tests.integration.test_owner_pages import create_strategy, registered, site, submit

pytestmark = pytest.mark.integration

__all__ = ["site"]  # the fixture, imported for this module's tests


def _settings_input(html: str, sid: str) -> str:
    """The value of a strategy's settings form's base currency field."""
    found = re.search(rf'id="s-{sid}-base-currency" name="base_currency"[^>]*value="([^"]*)"', html)
    assert found, html
    return found[1]


def test_create_with_a_base_currency_then_change_it(site):
    c, _ = registered(site)
    home = c.get("/account")
    assert home.status_code == 200
    # the create form: a free-text field suggesting every code, USD unless changed
    assert re.search(r'id="new-base-currency" name="base_currency" list="currency-codes"[^>]*value="USD"', home.text)
    codes = re.findall(r'<option value="([A-Z]{3})">', home.text.split('<datalist id="currency-codes">')[1])
    assert codes[:4] == ["USD", "EUR", "GBP", "JPY"] and "SEK" in codes and len(codes) == len(set(codes)) > 100

    default = create_strategy(site, c, "Dollar bot")
    euro = create_strategy(site, c, "Euro bot", base_currency=" eur ")  # typed: trimmed, upper-cased
    assert site.db.identity.profile(UUID(default)).base_currency == "USD"
    assert site.db.identity.profile(UUID(euro)).base_currency == "EUR"
    page = c.get("/account").text
    assert _settings_input(page, euro) == "EUR" and _settings_input(page, default) == "USD"
    assert f'id="s-{euro}-base-currency-note"' in page and "recomputes every figure in the new currency" in page

    # the settings form changes it; the other settings stay
    form = {"name": "Euro bot", "visibility": "private", "benchmark": "SPY", "show_positions": "none"}
    r = submit(c, "/account", f"/account/strategies/{euro}/settings", {**form, "base_currency": "JPY"})
    assert r.status_code == 303, r.text
    profile = site.db.identity.profile(UUID(euro))
    assert (profile.base_currency, profile.name, profile.benchmark) == ("JPY", "Euro bot", "SPY")
    assert _settings_input(c.get("/account").text, euro) == "JPY"


@pytest.mark.parametrize("code", ["XYZ", "US", "EURO", "€", "XAU"])
def test_a_bad_code_is_a_422_naming_the_field_and_nothing_changes(site, code):
    c, _ = registered(site)
    form = {"name": "Bad currency", "visibility": "private", "benchmark": "SPY", "show_positions": "none"}
    r = submit(c, "/account", "/account/strategies", {**form, "base_currency": code})
    assert r.status_code == 422 and 'id="form-error"' in r.text and "base_currency" in r.text, r.text
    assert 'id="new-base-currency" name="base_currency"' in r.text and f'value="{code}"' in r.text  # kept as typed
    assert 'id="no-strategies"' in c.get("/account").text  # nothing created

    sid = create_strategy(site, c, "Pound bot", base_currency="GBP")
    r = submit(c, "/account", f"/account/strategies/{sid}/settings", {**form, "base_currency": code})
    assert r.status_code == 422 and 'id="form-error"' in r.text and "base_currency" in r.text, r.text
    assert _settings_input(r.text, sid) == code  # the failed form shows what was typed
    profile = site.db.identity.profile(UUID(sid))
    assert (profile.base_currency, profile.name) == ("GBP", "Pound bot")  # nothing changed, not even the name
