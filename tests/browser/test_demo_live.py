"""Issue 24: the demo looks alive. On `botranks up` + `botranks demo`, the board's "Reported live only"
box, ticked and applied as a person does, lists the live demo bot whose every order was reported live;
the other live bot and the back-filled sample bots show their (partial) share on the full board."""

from __future__ import annotations

from pathlib import Path

from devtools.stack import wait_until

from .conftest import DESKTOP, PHONE

SHOTS = Path("/tmp/demolive/shots")


def _counted(site) -> bool:
    """The live bots' rows count their orders (the projector has them)."""
    rows = {r["strategy_id"]: r for r in site.http.get("/p/leaderboard", params={"limit": 500}).json()["items"]}
    return all(b["strategy_id"] in rows and rows[b["strategy_id"]]["orders"] for b in site.demo["live_bots"])


def test_the_live_only_filter_lists_the_demo_bot_that_reported_live(site, new_context, watch):
    wait_until(lambda: _counted(site), 120, "the live demo bots on the board")
    live = {b["name"]: b for b in site.demo["live_bots"]}
    dca, balanced = live["Hourly BTC DCA (demo)"], live["BTC 50/50 hourly (demo)"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_context(viewport=DESKTOP).new_page()
    checks = watch(page)
    page.goto(site.url("/"))

    def share(strategy_id: str) -> float:
        cell = page.locator(f'#leaderboard tr[data-strategy-id="{strategy_id}"] td[data-col="live_share"]')
        return float(cell.get_attribute("data-value") or "nan")

    assert share(dca["strategy_id"]) == 1.0
    assert 0 < share(balanced["strategy_id"]) < 0.95  # back-filled closes, then live hours
    for bot in site.demo["bots"]:  # years of back-fill: at most the closes `demo_live` sent live since
        assert share(bot["strategy_id"]) < 0.95, bot["name"]
    page.locator(f'#leaderboard tr[data-strategy-id="{balanced["strategy_id"]}"]').scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "board-live-share-1366x900.png"))

    page.check("#filter-live-only")
    page.click("form button[type=submit]")
    page.wait_for_url("**live_only=1**")
    shown = page.locator("#leaderboard tbody tr").evaluate_all("rows => rows.map(r => r.dataset.strategyId)")
    assert shown == [dca["strategy_id"]]
    assert page.locator("#filter-live-only").is_checked()
    assert (
        page.locator(f'#leaderboard td[data-col="name"] a[href="/s/{dca["strategy_id"]}"]').inner_text() == dca["name"]
    )
    page.screenshot(path=str(SHOTS / "board-live-only-1366x900.png"), full_page=True)
    checks.assert_clean("/?live_only=1")

    phone = new_context(viewport=PHONE).new_page()
    phone.goto(site.url("/?live_only=1"))
    assert (
        dca["name"] in phone.locator("main").inner_text() and balanced["name"] not in phone.locator("main").inner_text()
    )
    phone.screenshot(path=str(SHOTS / "board-live-only-390x844.png"), full_page=True)
