"""The board's sparklines (issue 24): the growth index at evenly spaced NAV days (deposits no gains), and
its inline SVG."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

from botranks_domain.nav import NavRow
from botranks_domain.series import sparkline
from services.query_api.formatting import sparkline_svg


def _rows(equity: list[str], flows: dict[int, str] | None = None) -> list[NavRow]:
    flows = flows or {}
    day = date(2024, 1, 1)
    return [NavRow(day + timedelta(days=i), D(0), D(e), D(e), D(flows.get(i, "0"))) for i, e in enumerate(equity)]


def test_the_index_is_time_weighted_and_sampled_evenly_with_the_last_day():
    # +10 %, then a deposit of 100 that is no gain, then -5 %
    rows = _rows(["100", "110", "210", "199.5"], {2: "100"})
    assert sparkline(rows) == "1.0000,1.1000,1.1000,1.0450"
    many = _rows([str(100 + i) for i in range(500)])
    points = sparkline(many, points=48).split(",")
    assert len(points) == 48 and points[0] == "1.0000" and points[-1] == f"{599 / 100:.4f}"
    assert sparkline(_rows(["100"])) is None and sparkline([]) is None


def test_an_emptied_account_keeps_the_index_flat():
    assert sparkline(_rows(["100", "0", "50"], {1: "-100"})) == "1.0000,1.0000,1.0000"


def test_the_svg_is_a_polyline_toned_by_where_it_ends():
    up = str(sparkline_svg("1.0,0.9,1.2"))
    assert up.startswith('<svg class="spark up"') and up.count(",") >= 3 and "+20.0%" in up
    assert 'class="spark down"' in str(sparkline_svg("1.0,1.1,0.8"))
    assert str(sparkline_svg(None)) == "" and "<polyline" in str(sparkline_svg("1.0,1.0"))
