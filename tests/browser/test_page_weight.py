"""What a strategy page weighs in a real browser: bytes by resource type (as sent and as decoded), its
load time and when its charts are there; a strategy page loads at most 1 MB of script (issue 24).

The numbers go to ``tests/artifacts/page-weight-strategy.json`` (and the test's output with ``-s``)."""

from __future__ import annotations

import json
import statistics
from typing import Any

from .conftest import ARTIFACTS

SCRIPT_LIMIT = 1_000_000  # bytes of script, decoded (what the browser parses)
CHARTS = ("chart-equity", "chart-drawdown", "chart-rolling", "chart-monthly")
TIMES = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    return {dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd};
}"""


def _visit(new_context, url: str, charts: tuple[str, ...] = CHARTS) -> dict:
    """One visit with an empty cache: every response's type and sizes, and the page's timings."""
    context = new_context()
    page = context.new_page()
    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response))
    page.goto(url)
    page.wait_for_function(
        "ids => ids.every(id => document.getElementById(id).dataset.drawn === 'true')", arg=list(charts)
    )
    charts_ms = page.evaluate("() => performance.now()")
    page.wait_for_load_state("networkidle")
    times = page.evaluate(TIMES)
    by_type: dict[str, dict[str, int]] = {}
    for response in responses:
        kind = response.request.resource_type
        sent = response.request.sizes()["responseBodySize"]
        decoded = len(response.body()) if response.status == 200 else 0
        row = by_type.setdefault(kind, {"requests": 0, "sent_bytes": 0, "decoded_bytes": 0})
        row["requests"] += 1
        row["sent_bytes"] += sent
        row["decoded_bytes"] += decoded
    context.close()
    return {"by_type": by_type, "charts_drawn_ms": round(charts_ms), **{k: round(v) for k, v in times.items()}}


def _report(new_context, url: str, page: str, charts: tuple[str, ...]) -> dict:
    visits = [_visit(new_context, url, charts) for _ in range(3)]
    by_type = visits[-1]["by_type"]
    report = {
        "page": page,
        "by_type": by_type,
        "total_sent_bytes": sum(r["sent_bytes"] for r in by_type.values()),
        "total_decoded_bytes": sum(r["decoded_bytes"] for r in by_type.values()),
        # medians of 3 visits with an empty cache, on loopback
        **{k: statistics.median(v[k] for v in visits) for k in ("dom_content_loaded_ms", "load_ms", "charts_drawn_ms")},
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"page-weight-{'board' if page == '/' else 'strategy'}.json").write_text(
        json.dumps(report, indent=2) + "\n"
    )
    print(json.dumps(report, indent=2))
    return report


def test_a_strategy_page_loads_less_than_1_mb_of_script(site, new_context):
    report = _report(new_context, site.url(f"/s/{site.strategy_id}"), "/s/{demo strategy}", CHARTS)
    by_type = report["by_type"]
    script = by_type.get("script", {"decoded_bytes": 0})
    assert 0 < script["decoded_bytes"] < SCRIPT_LIMIT, report
    assert by_type["document"]["requests"] == 1, report


def test_the_board_is_light_too(site, new_context):
    """The board of the demo's bots: its sparklines are inline SVG, so it is one document, a stylesheet,
    the favicon and the same small script at most (no request per row)."""
    report = _report(new_context, site.url("/?min_days=0"), "/", ())
    by_type = report["by_type"]
    assert by_type["document"]["requests"] == 1, report
    assert sum(r["requests"] for r in by_type.values()) <= 5, report
    assert report["total_decoded_bytes"] < 300_000, report
