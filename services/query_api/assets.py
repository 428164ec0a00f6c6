"""Static assets of the pages, served by query_api itself: no CDN, no npm, nothing fetched at run time.

Every file comes from this package (``static/``) or from a PyPI package we depend on:
openapi-ui-bundles' Swagger UI 5 (``/docs``). The strategy page's charts are drawn by the server
(``charts.py``): no chart library is served (docs/NOTES.md "Charts of the strategy page"). Only the files named here are
served (a whitelist, never a directory listing). Each is read once, kept in memory with a gzip copy,
and addressed by a versioned URL ``/static/<name>?v=<content hash>``: that URL never changes
meaning, so it is cached for a year (``immutable``); the same name without (or with a stale) ``v``
answers the current file with a short cache lifetime.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import openapi_ui_bundles.swagger_ui

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
SWAGGER_DIR = Path(openapi_ui_bundles.swagger_ui.static_path)

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

#: public name -> file; nothing else under /static exists
FILES: dict[str, Path] = {
    "swagger-ui.css": SWAGGER_DIR / "swagger-ui.css",
    "swagger-ui-bundle.js": SWAGGER_DIR / "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js": SWAGGER_DIR / "swagger-ui-standalone-preset.js",
    **{p.name: p for p in sorted(STATIC_DIR.iterdir()) if p.is_file() and p.suffix in _TYPES},
}


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    gzipped: bytes | None  # None when compressing does not pay (images)
    media_type: str
    version: str

    @property
    def url(self) -> str:
        return f"/static/{self.name}?v={self.version}"


_loaded: dict[str, Asset] = {}
_lock = threading.Lock()


def asset(name: str) -> Asset | None:
    """The asset called ``name`` (read and compressed on first use), or None if there is none."""
    found = _loaded.get(name)
    if found is not None or name not in FILES:
        return found
    with _lock:
        if name not in _loaded:
            path = FILES[name]
            body = path.read_bytes()
            media_type = _TYPES[path.suffix]
            gzipped = None if path.suffix == ".png" else gzip.compress(body, 6, mtime=0)
            _loaded[name] = Asset(name, body, gzipped, media_type, hashlib.sha256(body).hexdigest()[:12])
        return _loaded[name]


def preload() -> None:
    """Read and compress every asset (~0.05 s, at start-up: never on the event loop of a request)."""
    for name in FILES:
        asset(name)


def url(name: str) -> str:
    """The versioned URL of an asset (templates call this: ``asset_url('app.js')``)."""
    found = asset(name)
    if found is None:
        raise KeyError(f"no static asset named {name!r}")
    return found.url


def build_version() -> str:
    """A digest of the templates and of our own static files: part of every page's ETag, so a
    deploy that changes how a page looks never answers 304 for the old look."""
    digest = hashlib.sha256()
    for path in sorted([*TEMPLATES_DIR.glob("*.html"), *STATIC_DIR.iterdir()]):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
