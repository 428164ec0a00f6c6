"""Numbers for people: the pages' Jinja2 filters (``FILTERS``) and the sign class of a figure.

Signed percents with one decimal, thousands separators, a real minus sign, ``—`` for a figure
that is missing or not finite (docs/NOTES.md "Numbers for people"). Money carries its currency
(``amount``: Babel's en_US symbol and the currency's own digits, e.g. ``€1,234.50``, ``¥1,235``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from babel.numbers import format_currency, get_currency_precision
from markupsafe import Markup

DASH = "—"
MINUS = "−"


def _signed(text: str, negative: bool, positive: bool) -> str:
    return (MINUS + text) if negative else ("+" + text) if positive else text


def pct(value: float | None, digits: int = 1, signed: bool = True) -> str:
    """``0.1234`` → ``+12.3%``; None/NaN → ``—``."""
    if value is None or not math.isfinite(value):
        return DASH
    shown = f"{abs(value) * 100:,.{digits}f}"
    if float(shown.replace(",", "")) == 0:
        return f"{0:.{digits}f}%"
    return _signed(shown, value < 0, signed and value > 0) + "%"


def ratio(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    shown = f"{abs(value):,.{digits}f}"
    return _signed(shown, value < 0 and float(shown.replace(",", "")) != 0, False)


def money(value: Decimal | float | None, digits: int = 2, signed: bool = False) -> str:
    """Thousands separators, two decimals: ``1234567.5`` → ``1,234,567.50``."""
    if value is None:
        return DASH
    number = Decimal(value) if not isinstance(value, Decimal) else value
    if not number.is_finite():
        return DASH
    shown = f"{abs(number):,.{digits}f}"
    zero = Decimal(shown.replace(",", "")) == 0
    return _signed(shown, number < 0 and not zero, signed and number > 0 and not zero)


def currency_digits(code: str) -> int:
    """The decimal places an amount in ``code`` is shown with (CLDR: USD 2, JPY 0, BHD 3)."""
    return int(get_currency_precision(code))


def _amount_parts(value: Decimal | int | None, currency: str, signed: bool) -> tuple[str, str, str] | None:
    """(sign, symbol, digits) of an amount in ``currency``, or None when there is no figure to show."""
    if value is None:
        return None
    number = value if isinstance(value, Decimal) else Decimal(value)
    if not number.is_finite():
        return None
    shown = abs(number).quantize(Decimal(1).scaleb(-currency_digits(currency)), ROUND_HALF_EVEN)
    text = format_currency(shown, currency, locale="en_US")
    digit = next((i for i, ch in enumerate(text) if ch.isdigit()), 0)
    symbol = text[:digit]
    if symbol[-1:].isalpha():  # CLDR's currency spacing: "CHF 12.00", not "CHF12.00"
        symbol += "\u00a0"
    zero = shown == 0
    return _signed("", number < 0 and not zero, signed and number > 0 and not zero), symbol, text[digit:]


def amount(value: Decimal | int | None, currency: str | None, signed: bool = False) -> str:
    """An amount with its currency, as ``money`` signs it: ``€1,234.50``, ``−£3.10``, ``+¥1,235``;
    a symbol of letters keeps a no-break space from the digits (``CHF 12.00``); None → ``—``.
    Rounded half-even to the currency's digits; no currency: ``money``."""
    if not currency:
        return money(value, signed=signed)
    parts = _amount_parts(value, currency, signed)
    return DASH if parts is None else "".join(parts)


def amount_html(value: Decimal | int | None, currency: str | None, signed: bool = False) -> Markup:
    """``amount`` for a card: the same text, with a line break allowed between the currency and the
    digits (a long figure in a narrow card wraps there, never inside the number)."""
    if not currency:
        return Markup.escape(money(value, signed=signed))
    parts = _amount_parts(value, currency, signed)
    if parts is None:
        return Markup(DASH)
    return Markup('<span class="ccy">{}{}</span><wbr>{}').format(parts[0], parts[1], parts[2])


def quantity(value: Decimal | None) -> str:
    if value is None:
        return DASH
    text = f"{abs(value):,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return _signed(text, value < 0, False)


def integer(value: int | None) -> str:
    return DASH if value is None else f"{value:,}"


def when(value: datetime | date | None) -> str:
    if value is None:
        return DASH
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def day(value: datetime | date | None) -> str:
    """The UTC date only (the leaderboard's last activity; the full time is its tooltip)."""
    if value is None:
        return DASH
    return (value.astimezone(UTC).date() if isinstance(value, datetime) else value).isoformat()


def raw(value: Any) -> str:
    """A cell's machine-readable value (``data-value``): the number as is, empty for null."""
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def prob(value: float | None) -> str:
    """A probability as a percent with one decimal, never rounded to a certainty: ``0.9999`` →
    ``>99.9%``, ``0.00001`` → ``<0.1%``; None → ``—``."""
    if value is None or not math.isfinite(value):
        return DASH
    if value >= 0.9995:
        return ">99.9%"
    if 0 < value < 0.0005:
        return "<0.1%"
    return f"{value * 100:.1f}%"


def sparkline_svg(points: str | None, width: int = 96, height: int = 24) -> Markup:
    """A board row's equity sparkline (``series.sparkline``'s text) as inline SVG: a polyline of the growth
    index, green when it ends above where it started, red below; nothing without points."""
    if not points:
        return Markup("")
    values = [float(v) for v in points.split(",")]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    step = (width - 2) / max(1, len(values) - 1)
    coords = " ".join(
        f"{1 + i * step:.1f},{1 + (height - 2) * (1 - (v - lo) / span):.1f}" for i, v in enumerate(values)
    )
    tone = "up" if values[-1] >= values[0] else "down"
    change = f"{(values[-1] / values[0] - 1) * 100:+.1f}%" if values[0] else ""
    return Markup(
        '<svg class="spark {}" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="equity {}">'
        '<polyline points="{}"/></svg>'
    ).format(tone, width, height, width, height, change, coords)


FILTERS = {
    "sparkline": sparkline_svg,
    "pct": pct,
    "prob": prob,
    "ratio": ratio,
    "money": money,
    "amount": amount,
    "amount_html": amount_html,
    "quantity": quantity,
    "integer": integer,
    "when": when,
    "day": day,
    "raw": raw,
}


def sign_class(value: float | Decimal | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or value == 0:
        return ""
    return "pos" if value > 0 else "neg"


# ---------------------------------------------------------------- significance, drawn and said

#: the Sharpe intervals' common scale never reaches past ±6: one wild interval must not squash the rest
CI_CLIP = 6.0
CI_WIDTH, CI_HEIGHT, CI_PAD = 72, 14, 5


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def ci_scale(figures: Iterable[tuple[list[float] | None, float | None]]) -> tuple[float, float]:
    """The Sharpe scale shared by a page's interval bars, from its (interval, Sharpe) pairs: every
    interval, estimate and 0, clipped to ±``CI_CLIP``, at least one unit wide."""
    values = [0.0]
    for ci, sharpe in figures:
        values += [v for v in (ci or []) if _finite(v)]
        if sharpe is not None and _finite(sharpe):
            values.append(sharpe)
    lo, hi = max(min(values), -CI_CLIP), min(max(values), CI_CLIP)
    if hi - lo < 1:
        lo, hi = min(lo, -0.5), max(hi, 0.5)
    return lo, hi


def ci_bar(
    ci: list[float] | None, sharpe: float | None, scale: tuple[float, float], width: int = CI_WIDTH
) -> dict[str, Any] | None:
    """Where a Sharpe ratio's 95 % interval is drawn on ``scale`` (pixels of a ``width`` wide SVG),
    which ends run off it, its tone (above 0, below 0, or across), and what it says in words."""
    if not ci or len(ci) != 2 or not all(_finite(v) for v in ci):
        return None
    lo, hi = scale
    inner = width - 2 * CI_PAD

    def x(v: float) -> float:
        return round(CI_PAD + (min(max(v, lo), hi) - lo) / (hi - lo) * inner, 1)

    mid = sharpe if sharpe is not None and math.isfinite(sharpe) else (ci[0] + ci[1]) / 2
    tone = "pos" if ci[0] > 0 else "neg" if ci[1] < 0 else "across"
    return {
        "lo": x(ci[0]),
        "hi": x(ci[1]),
        "mid": x(mid),
        "zero": x(0.0),
        "clipped_lo": ci[0] < lo,
        "clipped_hi": ci[1] > hi,
        "tone": tone,
        "label": f"95% interval of the Sharpe ratio: {ratio(ci[0])} to {ratio(ci[1])}",
        "width": width,
        "height": CI_HEIGHT,
    }


def record_hint(observations: int, min_days: int | None, psr: float | None) -> dict[str, str] | None:
    """What the minimum track record says of a record: ``needs N more days`` while it is shorter, or
    that no length will do while the Sharpe ratio is 0 or below (``text``, and as ``lead`` + ``tail``
    for a line break between them); None when there is nothing to say."""
    if psr is None:
        return None  # no figures at all (too short, or flat): the page says why elsewhere
    if min_days is None:
        return {
            "text": "needs a positive Sharpe",
            "lead": "needs a",
            "tail": "positive Sharpe",
            "title": "Its Sharpe ratio is 0 or below: no track record, however long, "
            "makes a true Sharpe above 0 likely at 95%.",
        }
    if observations < min_days:
        more = min_days - observations
        return {
            "text": f"needs {more:,} more day{'' if more == 1 else 's'}",
            "lead": f"needs {more:,}",
            "tail": f"more day{'' if more == 1 else 's'}",
            "title": f"{observations:,} daily returns so far; {min_days:,} give 95% confidence "
            "that the true Sharpe ratio is above 0 (minimum track record).",
        }
    return None
