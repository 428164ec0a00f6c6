"""Browser tests: Debian's headless Chromium driven by playwright's Python package.

One real ``botranks up`` (embedded default: its own PostgreSQL and nats-server under a temporary
BOTRANKS_HOME, on a free port) for the whole ``tests/browser`` package, then ``botranks demo``
against it, exactly as a new user would run them. The browser is ``/usr/bin/chromium``
(``apt-get install -y chromium``; ``.ci/run`` installs it under CI): playwright never downloads
a browser of its own. Every launch gets a fresh, temporary user-data directory (playwright's
``launch`` creates and removes one), and every test its own browser context (own cookies).

Under ``CI=true`` a missing Chromium or a missing playwright FAILS the tests; elsewhere they are
skipped. Screenshots go to ``tests/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.stack import ROOT, wait_until
from tools.processes import free_port

CHROMIUM = Path(os.environ.get("BOTRANKS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


# ---------------------------------------------------------------- the site: botranks up + botranks demo


@dataclass
class Site:
    base: str
    port: int
    env: dict[str, str]
    home: Path
    log: Path
    demo: dict[str, Any]
    http: httpx.Client = field(repr=False)

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def strategy_id(self) -> str:
        return self.demo["strategy_id"]

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "tools.cli", *args],
            cwd=ROOT,
            env={**self.env, "BOTRANKS_URL": self.base},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, f"botranks {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out.stdout


def _up_log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-4000:]
    except OSError:
        return ""


@pytest.fixture(scope="package")
def site(tmp_path_factory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("browser")
    home = tmp / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTRANKS_")}
    env["BOTRANKS_HOME"] = str(home)
    env["BOTRANKS_WEBHOOKS_ALLOW_PRIVATE"] = "1"  # webhooks may reach the tests' receivers on 127.0.0.1
    port = free_port()
    log_path = tmp / "up.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base, timeout=30)

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"botranks up exited with {process.returncode}:\n{_up_log_tail(log_path)}")
        try:
            return http.get("/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 180, "botranks up to be healthy")
        site = Site(base, port, env, home, log_path, {}, http)
        out = site.cli("demo")
        site.demo = json.loads(out[out.index("{") :])

        def ranked() -> bool:  # the projector has put every demo bot on the leaderboard
            r = http.get("/p/leaderboard", params={"min_days": 0})
            if r.status_code != 200:
                return False
            shown = {row["strategy_id"] for row in _rows(r.json())}
            return {b["strategy_id"] for b in site.demo["bots"]} <= shown

        wait_until(ranked, 60, "every demo bot on /p/leaderboard")
        yield site
    finally:
        http.close()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _rows(body: Any) -> list[dict[str, Any]]:
    """The rows of a /p/leaderboard answer (``{"rows": [...]}`` or ``{"items": [...]}``)."""
    if isinstance(body, list):
        return body
    for key in ("rows", "items", "strategies"):
        if isinstance(body.get(key), list):
            return body[key]
    raise AssertionError(f"no rows in the leaderboard answer: {str(body)[:300]}")


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="package")  # not session: playwright's sync API keeps an event loop running in
def browser() -> Iterator[Any]:  # this thread until it stops, and later tests call asyncio.run()
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        # launch() gives every browser a fresh temporary user-data directory (removed on close)
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_context(browser, site):
    """Factory of isolated browser contexts (own cookies: a stranger, an owner...), closed after the test."""
    contexts = []

    def make(viewport: dict[str, int] = DESKTOP, **kw: Any):
        context = browser.new_context(viewport=viewport, **kw)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context):
    return new_context().new_page()


class Watch:
    """What went wrong in a page as a person would notice it: console errors, uncaught exceptions,
    failed requests, HTTP errors, and anything fetched from outside the site."""

    def __init__(self, page: Any, base: str) -> None:
        self.base = base
        self.console: list[str] = []
        self.failed: list[str] = []
        self.foreign: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.console.append(f"uncaught: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.request.method} {r.url}"))
        page.on("request", self._request)

    def _failed(self, request: Any) -> None:
        # Chromium fetches the favicon on its own and cancels that fetch when the page navigates on
        # (net::ERR_ABORTED): nothing a person sees; any other failed request counts
        if "/favicon" in request.url and "ERR_ABORTED" in (request.failure or ""):
            return
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console.append(f"{message.text} @ {message.location}")

    def _request(self, request: Any) -> None:
        self.requests.append(request.url)
        if not request.url.startswith((self.base + "/", "data:", "blob:", "about:")):
            self.foreign.append(request.url)

    def assert_clean(self, what: str) -> None:
        assert not self.console, f"{what}: console errors {self.console}"
        assert not self.failed, f"{what}: failed requests {self.failed}"
        assert not self.foreign, f"{what}: requests that left the site {self.foreign}"


@pytest.fixture
def watch(site):
    return lambda page: Watch(page, site.base)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
