"""The owner pages' forms: their fields read as domain structs, and the rules they break as the
status and detail of the JSON API (422 naming the field)."""

from __future__ import annotations

from typing import Any

import msgspec

from botranks_domain.errors import DomainError
from botranks_domain.model import normalize_symbol
from libs.infra.web import domain_status, validation_detail


def form_field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def convert_form(data: dict[str, Any], kind: type) -> Any:
    """A form as a domain struct; its rules broken → the 422 of the JSON API, naming the field."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise FormError(422, validation_detail(exc)) from None


class FormError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def form_error(exc: DomainError | FormError) -> FormError:
    if isinstance(exc, FormError):
        return exc
    return FormError(domain_status(exc), exc.detail, exc.headers or None)


def benchmark_symbol(raw: str) -> str:
    raw = raw.strip()
    return normalize_symbol(raw, "benchmark") if raw else ""


def currency_code(raw: str) -> str:
    """A typed currency code as the API spells it (``eur `` → ``EUR``); checked by the struct it goes in."""
    return raw.strip().upper()


def choice(raw: str, allowed: tuple[str, ...], name: str) -> str:
    if raw not in allowed:
        raise FormError(422, f"`{name}` must be one of: {', '.join(allowed)}")
    return raw
