"""A public strategy's record on other sites: a badge and an iframe card, served by query_api.

- ``/s/{id}/badge.svg``: an SVG badge (shields.io style, two rows, about 270 × 36): total return,
  max drawdown, DSR when the strategy has one, track-record length and whether its history is
  hash-chained. Drawn
  with system fonts only (every text has a ``textLength``, so it fits whatever font renders it);
  no script, no style element, nothing fetched.
- ``/s/{id}/embed``: an HTML card meant for an ``<iframe>``: the name linking to the strategy's
  page, a small equity chart (inline SVG polyline of the NAV growth index, rebased to 100) and the
  key figures. Its CSP lets any origin frame it (``frame-ancestors *``) and allows nothing but inline
  styles; it carries no ``X-Frame-Options``. Every other answer keeps ``frame-ancestors 'none'`` and
  ``X-Frame-Options: DENY``.

Public strategies only, whoever asks (an owner's session is ignored: an embed shows what everybody
sees): a private, deleted, unknown or malformed id is the strategy page's 404. The figures are the
strategy page's (``PageCache.figures``), the chain its ``PageCache.chain``; the ETag is the page's
(``page_data.strategy_etag``): ``no-cache`` + ETag, If-None-Match → 304.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import ResponseHeader
from markupsafe import Markup, escape

from libs.infra.web import API_CSP, CSP_HEADER

from . import formatting, page_data, svg_charts
from .page_data import Access
from .serving import HTML, Answer, headers_for, html_headers, not_modified_answer, render, serve, state

SVG = "image/svg+xml"
#: the card: framed by anyone, loads nothing, runs nothing; styles inline only
EMBED_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors *"
#: the badge (an image): the API's policy, it needs nothing either
BADGE_CSP = API_CSP
#: the card's handler drops the app's X-Frame-Options (a documentation-only header of the same name
#: replaces the layers' one and is never sent) and sets its own CSP
EMBED_HEADERS = [
    ResponseHeader(name=CSP_HEADER, value=EMBED_CSP),
    ResponseHeader(name="X-Frame-Options", documentation_only=True, description="not sent: the card may be framed"),
]
#: a DSR at or above this is shown as significant (the strategy page's threshold)
DSR_SIGNIFICANT = 0.95
CHART_POINTS = 240
CHART_W, CHART_H = 320, 84

# ---------------------------------------------------------------- what an embed shows


@dataclass(frozen=True)
class Record:
    """The figures a badge or a card shows (the strategy page's)."""

    id: str
    name: str
    total_return: float | None
    cagr: float | None
    max_drawdown: float | None
    sharpe: float | None
    dsr: float | None
    days: int | None
    inception: Any
    latest: Any
    chain_events: int
    chain_digest: str | None
    equity: list[float | None]


def public_access(request: Request, strategy_id: str) -> Access | None:
    """The strategy as the public sees it, or None (unknown, malformed, private or deleted)."""
    db, _, _ = state(request)
    sid = page_data.strategy_uuid(strategy_id)
    return page_data.access(db, sid, None) if sid else None


def record(request: Request, acc: Access, key: Any) -> Record:
    """What the badge and the card show, from the strategy page's caches."""
    _, cache, _ = state(request)
    figures = cache.figures(key)
    perf = figures.performance
    chain = cache.chain(acc.profile.id, key.nav_version)
    sig = perf.significance
    return Record(
        id=str(acc.profile.id),
        name=acc.profile.name,
        total_return=perf.total_return,
        cagr=perf.cagr,
        max_drawdown=perf.drawdown.max_drawdown,
        sharpe=perf.sharpe_ratio,
        dsr=sig.dsr if sig else None,
        days=perf.days,
        inception=perf.inception_date,
        latest=perf.latest_date,
        chain_events=chain.events,
        chain_digest=chain.digest,
        equity=list(figures.series.equity),
    )


# ---------------------------------------------------------------- the badge

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
#: Verdana 11 px advance widths (what shields.io measures with), by character class; a guess is
#: enough: every text carries ``textLength`` and is squeezed or spread to exactly this width
_WIDE = {"%": 12.2, "+": 9.2, "−": 9.2, "✓": 8.6, "W": 11.2, "M": 9.9, "m": 10.7, "w": 9.0, " ": 3.9}
_NARROW = {".": 3.9, ",": 3.9, "i": 3.1, "l": 3.1, "j": 3.5, "t": 4.3, "f": 3.9, "r": 4.7, ":": 4.5}


def xml_text(value: str) -> str:
    """``value`` escaped for XML text or a quoted attribute, without the characters XML 1.0 forbids."""
    return str(escape(_NOT_XML.sub("\ufffd", value)))


def text_width(text: str) -> float:
    """Its width in Verdana 11 px, estimated (see ``_WIDE``)."""
    width = 0.0
    for ch in text:
        if ch in _WIDE:
            width += _WIDE[ch]
        elif ch in _NARROW:
            width += _NARROW[ch]
        elif ch.isdigit():
            width += 7.0
        elif ch.isupper():
            width += 7.6
        else:
            width += 6.2
    return round(width, 1)


@dataclass(frozen=True)
class Segment:
    text: str
    fill: str
    metric: str


GREY, DARK, GREEN, RED, BLUE = "#6b7280", "#374151", "#2e7d32", "#c62828", "#35608a"


def _tone(value: float | None) -> str:
    if value is None or not math.isfinite(value) or value == 0:
        return GREY
    return GREEN if value > 0 else RED


def badge_segments(rec: Record) -> list[list[Segment]]:
    """The badge's boxes right of the brand: the return and the drawdown on top; the DSR (when the
    strategy has one), the track record and the chain below."""
    top = [
        Segment(f"return {formatting.pct(rec.total_return)}", _tone(rec.total_return), "total_return"),
        Segment(f"max DD {formatting.pct(rec.max_drawdown)}", BLUE, "max_drawdown"),
    ]
    bottom = []
    if rec.dsr is not None and math.isfinite(rec.dsr):
        bottom.append(Segment(f"DSR {formatting.prob(rec.dsr)}", GREEN if rec.dsr >= DSR_SIGNIFICANT else GREY, "dsr"))
    days = rec.days or 0
    bottom.append(Segment(f"{formatting.integer(days)} day{'' if days == 1 else 's'}", BLUE, "track_days"))
    chained = rec.chain_events > 0
    bottom.append(Segment("chain ✓" if chained else "chain —", GREEN if chained else GREY, "chain"))
    return [top, bottom]


def badge_label(rec: Record) -> str:
    """The badge's accessible text (its ``<title>`` and ``aria-label``)."""
    parts = [
        f"total return {formatting.pct(rec.total_return)}",
        f"max drawdown {formatting.pct(rec.max_drawdown)}",
    ]
    if rec.dsr is not None:
        parts.append(f"DSR {formatting.prob(rec.dsr)}")
    parts.append(f"track record {formatting.integer(rec.days or 0)} days")
    if rec.chain_events:
        parts.append(f"hash-chained history of {formatting.integer(rec.chain_events)} events")
    else:
        parts.append("no hash-chained history yet")
    return f"BotRanks: {rec.name}: " + ", ".join(parts)


def _text(x: float, baseline: float, width: float, text: str, metric: str) -> str:
    """White text centred at ``x`` (with shields.io's shadow), exactly ``width`` wide."""
    fit = f'x="{x:g}" textLength="{width:g}" lengthAdjust="spacingAndGlyphs"'
    shown = xml_text(text)
    return (
        f'<text {fit} y="{baseline + 1:g}" fill="#010101" fill-opacity=".3" aria-hidden="true">{shown}</text>'
        f'<text {fit} y="{baseline:g}" data-metric="{metric}">{shown}</text>'
    )


def badge_svg(rec: Record) -> bytes:
    """The badge, two rows of 18 px (about 270 × 36): the brand on the left across both, then
    flat-coloured boxes of white text; each row's boxes share out the width of the wider one."""
    pad, row_h = 6.0, 18
    height = 2 * row_h
    brand_text = text_width("BotRanks")
    brand_w = brand_text + 2 * pad
    rows = badge_segments(rec)
    natural = [[text_width(seg.text) for seg in row] for row in rows]
    inner = max(sum(w + 2 * pad for w in widths) for widths in natural)
    width = math.ceil(brand_w + inner)
    label = xml_text(badge_label(rec))
    rects = [f'<rect width="{brand_w:g}" height="{height}" fill="{DARK}"/>']
    texts = [_text(brand_w / 2, height / 2 + 4, brand_text, "BotRanks", "brand")]
    for r, (row, widths) in enumerate(zip(rows, natural, strict=True)):
        extra = (width - brand_w - sum(w + 2 * pad for w in widths)) / len(row)
        x, top = brand_w, r * row_h
        for seg, text_w in zip(row, widths, strict=True):
            box_w = round(text_w + 2 * pad + extra, 2)
            rects.append(f'<rect x="{x:g}" y="{top}" width="{box_w:g}" height="{row_h}" fill="{seg.fill}"/>')
            texts.append(_text(round(x + box_w / 2, 2), top + 13, text_w, seg.text, seg.metric))
            x += box_w
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{label}" data-strategy-id="{xml_text(rec.id)}">',
        f"<title>{label}</title>",
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>',
        f'<clipPath id="r"><rect width="{width}" height="{height}" rx="3" fill="#fff"/></clipPath>',
        '<g clip-path="url(#r)">',
        *rects,
        f'<line x1="{brand_w:g}" x2="{width}" y1="{row_h}" y2="{row_h}" stroke="#fff" stroke-opacity=".6"/>',
        f'<rect width="{width}" height="{height}" fill="url(#s)"/></g>',
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">',
        *texts,
        "</g></svg>\n",
    ]
    return "".join(out).encode()


# ---------------------------------------------------------------- the card's chart


def equity_chart(equity: Sequence[float | None], width: int = CHART_W, height: int = CHART_H) -> Markup:
    """The NAV growth index (rebased to 100) as an inline SVG: a polyline per unbroken run, the 100
    line dashed; ``""`` when there is nothing to draw."""
    values = [v if v is not None and math.isfinite(v) else None for v in equity]
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return Markup("")
    low, high = min([*present, 100.0]), max([*present, 100.0])
    span = (high - low) or 1.0
    top, bottom = 4.0, height - 4.0
    last = max(len(values) - 1, 1)

    def y(v: float) -> float:
        return round(bottom - (v - low) / span * (bottom - top), 2)

    runs: list[list[str]] = [[]]
    for i, v in svg_charts.thin(values, CHART_POINTS):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{round(i / last * width, 2):g},{y(v):g}")
    lines = "".join(
        f'<polyline points="{" ".join(run)}" fill="none" stroke="#0b6bcb" stroke-width="1.6"'
        ' vector-effect="non-scaling-stroke" stroke-linejoin="round"/>'
        for run in runs
        if len(run) >= 2
    )
    base = y(100.0)
    label = f"Equity, rebased to 100: from {present[0]:.1f} to {present[-1]:.1f} (lowest {min(present):.1f})"
    return Markup(
        '<svg class="equity" id="embed-equity" viewBox="0 0 {w} {h}" width="100%" height="{h}"'
        ' preserveAspectRatio="none" role="img" aria-label="{label}" data-points="{n}">'
        '<title>{label}</title><line x1="0" x2="{w}" y1="{base}" y2="{base}" stroke="#9ca3af"'
        ' stroke-width="1" stroke-dasharray="3 3" vector-effect="non-scaling-stroke"/>{lines}</svg>'
    ).format(w=width, h=height, label=label, n=len(present), base=base, lines=Markup(lines))


# ---------------------------------------------------------------- the routes


def _not_found(request: Request) -> Answer:
    """The strategy page's 404 (same page, same headers: never framed) for whatever is not public."""
    return Answer(render(request, "not_found.html"), 404, headers={**html_headers(), "X-Frame-Options": "DENY"})


def _work(request: Request, strategy_id: str, what: str, csp: str, media_type: str, make: Any) -> Any:
    db, cache, build = state(request)
    if_none_match = request.headers.get("if-none-match")

    def work() -> Answer:
        acc = public_access(request, strategy_id)
        if acc is None:
            return _not_found(request)
        key = page_data.performance_key(db, acc.profile)
        tag = page_data.strategy_etag(build, what, acc, key, db.ledger.leaderboard_version())
        headers = headers_for(csp, tag, private=False)
        if page_data.not_modified(if_none_match, tag):
            answer = not_modified_answer(tag, headers)
        else:
            body = cache.bodies.get(tag) or cache.bodies.put(tag, make(record(request, acc, key)))
            answer = Answer(body, media_type=media_type, headers=headers)
        answer.strategy_id, answer.viewer = acc.profile.id, "public"
        return answer

    return work


@get("/s/{strategy_id:str}/badge.svg", include_in_schema=False)
async def badge(request: Request, strategy_id: str) -> Response:
    """The strategy's badge (SVG), or the strategy page's 404."""
    return await serve(request, "badge.svg", _work(request, strategy_id, "badge.svg", BADGE_CSP, SVG, badge_svg))


@get("/s/{strategy_id:str}/embed", include_in_schema=False, response_headers=EMBED_HEADERS)
async def embed_card(request: Request, strategy_id: str) -> Response:
    """The strategy's card for an iframe (HTML), or the strategy page's 404."""

    def card(rec: Record) -> bytes:
        return render(request, "embed.html", rec=rec, chart=equity_chart(rec.equity), dsr_significant=DSR_SIGNIFICANT)

    return await serve(request, "embed", _work(request, strategy_id, "embed.html", EMBED_CSP, HTML, card))


ROUTES = [badge, embed_card]

__all__ = ["EMBED_CSP", "ROUTES", "badge", "badge_svg", "embed_card", "equity_chart", "record"]
