"""The badge and the iframe card (issue 24) in a page of ANOTHER origin (a tiny HTML file served by
http.server on its own loopback port): the badge loads, the card renders in its frame, the strategy
page itself refuses to be framed there; the strategy page's "Embed this record" snippets. Desktop
and 390 px screenshots under the test's tmp dir, copied to /tmp/issue24-shots/."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from .conftest import DESKTOP, PHONE

SHOTS = Path("/tmp/issue24-shots")

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>A blog of another origin</title>
<style>body {{ font-family: sans-serif; margin: 16px; max-width: 720px; }} iframe {{ max-width: 100%; }}</style>
</head><body>
<h1>My trading bot</h1>
<p>Its record, live from BotRanks:</p>
<p><a href="{page}"><img id="badge" src="{badge}" alt="BotRanks record" height="36"></a></p>
<iframe id="card" src="{card}" title="BotRanks record" width="360" height="250" style="border:0" loading="eager"></iframe>
<p>The strategy page itself must not be framed:</p>
<iframe id="page-frame" src="{page}" title="not allowed" width="360" height="120"></iframe>
</body></html>
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def other_origin(site, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """http://127.0.0.1:<another port>/host.html embedding the demo strategy's badge and card."""
    root = tmp_path_factory.mktemp("other-origin")
    sid = site.strategy_id
    (root / "host.html").write_text(
        HOST_PAGE.format(
            page=site.url(f"/s/{sid}"), badge=site.url(f"/s/{sid}/badge.svg"), card=site.url(f"/s/{sid}/embed")
        )
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_address[1]}/host.html", sid=sid)
    finally:
        server.shutdown()
        server.server_close()


def _shoot(page, name: str, size: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}-{size}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_badge_and_card_in_a_page_of_another_origin(site, other_origin, new_context, tmp_path, viewport):
    size = "desktop" if viewport == DESKTOP else "phone"
    name = site.http.get(f"/p/strategies/{other_origin.sid}").json()["strategy"]["name"]
    page = new_context(viewport=viewport).new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(other_origin.url)
    assert not other_origin.url.startswith(site.base + "/"), "the host page is of another origin"
    page.wait_for_function("() => { const i = document.getElementById('badge'); return i.complete; }")
    width = page.evaluate("() => document.getElementById('badge').naturalWidth")
    assert 200 < width <= 360, "the badge loaded, and fits a phone"
    card = page.frame_locator("#card")
    link = card.locator("#embed-name")
    link.wait_for()
    assert link.inner_text() == name
    assert link.get_attribute("target") == "_blank" and link.get_attribute("rel") == "noopener"
    assert card.locator("#embed-equity polyline").count() >= 1
    assert card.locator("#embed-figures [data-metric]").count() == 6
    # the card fits its 360 px frame (nothing scrolls sideways inside it)
    frame = page.frame(url=site.url(f"/s/{other_origin.sid}/embed"))
    assert frame is not None
    assert frame.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    # the strategy page refuses to be framed: its frame never shows the page
    page.wait_for_timeout(300)
    framed = page.frame(url=site.url(f"/s/{other_origin.sid}"))
    assert framed is None or framed.locator("#strategy-name").count() == 0
    # nothing was fetched from anywhere but the two loopback origins, and no script ran into an error
    assert all(u.startswith(("http://127.0.0.1:", "about:", "data:")) for u in requests), requests
    assert not errors, errors
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the host page is {overflow}px wider than the screen"
    _shoot(page, "embed-other-origin", size, tmp_path)
    # the badge alone, at 3× for a readable picture
    zoomed = new_context(viewport=viewport, device_scale_factor=3).new_page()
    zoomed.goto(other_origin.url)
    zoomed.wait_for_function("() => document.getElementById('badge').naturalWidth > 0")
    zoomed.locator("#badge").screenshot(path=str(tmp_path / f"embed-badge-{size}.png"))
    shutil.copy(tmp_path / f"embed-badge-{size}.png", SHOTS / f"embed-badge-{size}.png")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_strategy_page_offers_the_snippets(site, new_context, watch, tmp_path, viewport):
    size = "desktop" if viewport == DESKTOP else "phone"
    page = new_context(viewport=viewport).new_page()
    checks = watch(page)
    sid = site.strategy_id
    page.goto(site.url(f"/s/{sid}"))
    section = page.locator("#embed-snippets")
    section.scroll_into_view_if_needed()
    assert page.locator("#embed-badge-preview").evaluate("img => img.complete && img.naturalWidth > 0")
    markdown = page.locator("#embed-badge-markdown")
    assert markdown.get_attribute("readonly") is not None
    assert markdown.input_value().endswith(f"({site.base}/s/{sid}/badge.svg)]({site.base}/s/{sid})")
    assert page.locator("#embed-card-html").input_value().startswith(f'<iframe src="{site.base}/s/{sid}/embed"')
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"
    box = section.bounding_box()
    assert box is not None and box["x"] + box["width"] <= viewport["width"]
    section.screenshot(path=str(tmp_path / f"embed-snippets-{size}.png"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / f"embed-snippets-{size}.png", SHOTS / f"embed-snippets-{size}.png")
    checks.assert_clean(f"/s/{sid} snippets at {size}")
