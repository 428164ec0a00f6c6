"""Issue 24: the board's search and filters (name text, minimum closed trades, maximum drawdown) on the
real query_api, checked against the unfiltered board's own rows; shareable URLs; 400s naming the field.
Uses test_pages' site (public Alpha, Beta, Gamma, Delta and a private one)."""

from __future__ import annotations

import pytest

from tests.integration.test_pages import site

pytestmark = pytest.mark.integration

__all__ = ["site"]  # the fixture, imported for this module's tests


def _board(site, **params) -> dict:
    r = site.client.get("/p/leaderboard", params={"min_days": 0, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_filters_select_exactly_the_rows_that_match(site):
    every = _board(site)["items"]
    assert len(every) >= 4
    by_name = {row["name"]: row for row in every}

    def names(**params) -> set[str]:
        return {row["name"] for row in _board(site, **params)["items"]}

    assert names(q="alp") == {n for n in by_name if "alp" in n.lower()} and names(q="alp")
    assert names(q="  ALPHA  ") == names(q="alpha")  # spaces trimmed, any case
    assert names(q="100%_\\") == set()  # LIKE's wildcards are text here, not patterns
    for trades in (0, 1, 3):
        assert names(min_trades=trades) == {n for n, r in by_name.items() if r["trades"] >= trades}
    for dd in (0, 5, 30, 100):
        expected = {n for n, r in by_name.items() if r["max_drawdown"] is not None and r["max_drawdown"] >= -dd / 100}
        assert names(max_dd=dd) == expected, (dd, {n: r["max_drawdown"] for n, r in by_name.items()})
    body = _board(site, q="a", max_dd=100, min_trades=0)
    assert (body["q"], body["max_dd"], body["min_trades"]) == ("a", 100, 0)


def test_the_page_keeps_the_filters_in_its_links_and_form(site):
    html = site.client.get("/", params={"q": "del", "max_dd": "40", "min_days": "0"}).text
    assert 'id="filter-q"' in html and 'value="del"' in html and 'id="filter-max-dd"' in html
    assert "q=del" in html and "max_dd=40" in html  # the column headers' and pages' links keep them
    assert "named like “del”" in html


@pytest.mark.parametrize(
    ("params", "field"),
    [({"q": "x" * 61}, "`q`"), ({"min_trades": "-1"}, "`min_trades`"), ({"max_dd": "101"}, "`max_dd`"),
     ({"max_dd": "deep"}, "`max_dd`")],
)  # fmt: skip
def test_bad_filters_are_400s_naming_the_field(site, params, field):
    r = site.client.get("/p/leaderboard", params=params)
    assert r.status_code == 400 and field in r.json()["detail"], r.text
    page = site.client.get("/", params=params)
    assert page.status_code == 400 and field in page.text
