"""Webhook signatures (Stripe's scheme), the SSRF guard and one delivery, without a database: a
receiver on 127.0.0.1 that the setting allows gets a POST whose signature verifies; 127.0.0.1
without the setting, a name that resolves (through the test's resolver) to 10.0.0.5, and metadata
addresses are refused before any connection; the resolved address is the one connected to (no
second resolution); a redirect is not followed; a receiver that never answers costs one deadline.
No packet leaves loopback."""

from __future__ import annotations

import ipaddress
import json
import shutil
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from devtools.webhook_receiver import Receiver
from libs.infra.follows import signing
from libs.infra.follows.delivery import RESPONSE_BYTES, deliver
from libs.infra.follows.guard import Refused, destination, forbidden

SECRET = "whsec_test-secret"
BODY = json.dumps({"id": str(uuid.uuid4()), "type": "ping"}).encode()


class Resolver:
    """The test's DNS: a fixed answer per name, and every question kept."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers, self.asked = answers, []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"no such name {host}")
        return self.answers[host]


def test_signature_round_trip_and_what_breaks_it() -> None:
    value = signing.header(SECRET, BODY, timestamp=1_800_000_000)
    t, v1 = value.split(",")
    assert t == "t=1800000000" and v1.startswith("v1=") and len(v1) == 3 + 64
    assert signing.verify(SECRET, value, BODY, now=1_800_000_010)
    assert not signing.verify("whsec_other", value, BODY, now=1_800_000_010)
    assert not signing.verify(SECRET, value, BODY + b" ", now=1_800_000_010)
    assert not signing.verify(SECRET, value, BODY, now=1_800_000_000 + 301)  # a replay, too late
    assert not signing.verify(SECRET, "v1=" + v1[3:], BODY, now=1_800_000_000)  # no timestamp


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "10.0.0.5", "172.16.0.1", "192.168.1.1", "169.254.1.1", "100.64.0.1", "224.0.0.1",
     "0.0.0.0", "::", "fe80::1", "fc00::1", "169.254.169.254", "fd00:ec2::254", "::ffff:127.0.0.1", "64:ff9b::a00:5"],
)  # fmt: skip
def test_every_non_public_address_is_forbidden(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address)) is None


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    dns = Resolver({"hooks.example.com": ["10.0.0.5"], "mixed.example.com": ["93.184.216.34", "192.168.0.7"]})
    with pytest.raises(Refused, match="10.0.0.5, a private address"):
        destination("https://hooks.example.com/in", dns)
    with pytest.raises(Refused, match="192.168.0.7"):  # every answer must pass
        destination("https://mixed.example.com/in", dns)
    assert dns.asked == ["hooks.example.com", "mixed.example.com"]


def test_metadata_is_refused_even_when_private_networks_are_allowed() -> None:
    dns = Resolver({"meta.example.com": ["169.254.169.254"]})
    with pytest.raises(Refused, match="metadata"):
        destination("http://meta.example.com/", dns, allow_private=True)
    with pytest.raises(Refused, match="metadata"):
        destination("http://[fd00:ec2::254]/", dns, allow_private=True)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "http:///nohost", "https://user:pw@example.com/", "javascript:alert(1)", "x" * 3000]
)
def test_urls_that_are_not_webhooks(url: str) -> None:
    with pytest.raises(Refused):
        destination(url, Resolver({}))


def test_a_delivery_to_an_allowed_local_receiver_is_signed() -> None:
    with Receiver() as rx:
        delivery = uuid.uuid4()
        out = deliver(rx.url + "?a=1", SECRET, BODY, kind="ping", delivery_id=delivery, allow_private=True)
        assert out.delivered and out.status == 200 and out.error is None and out.ms >= 0
        assert out.response is not None and len(out.response.encode()) <= RESPONSE_BYTES
        (got,) = rx.requests
        assert got.path == "/hook?a=1" and got.body == BODY
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["BotRanks-Event"] == "ping" and got.headers["BotRanks-Delivery"] == str(delivery)
        assert signing.verify(SECRET, got.headers[signing.HEADER], got.body)


def test_loopback_without_the_setting_is_refused_and_nothing_is_sent() -> None:
    with Receiver() as rx:
        out = deliver(rx.url, SECRET, BODY, kind="ping", delivery_id=uuid.uuid4())
        assert not out.delivered and out.status is None and "loopback" in (out.error or "")
        assert rx.requests == []


def test_a_name_resolving_to_10_0_0_5_is_refused_before_any_connection() -> None:
    dns = Resolver({"internal.example.com": ["10.0.0.5"]})
    out = deliver("http://internal.example.com/x", SECRET, BODY, kind="ping", delivery_id=uuid.uuid4(), resolver=dns)
    assert out.status is None and out.error is not None and out.error.startswith("refused") and "10.0.0.5" in out.error
    assert out.ms < 1000 and dns.asked == ["internal.example.com"]


def test_the_connection_goes_to_the_checked_address_resolved_once() -> None:
    with Receiver() as rx:
        port = rx.server.server_address[1]
        dns = Resolver({"receiver.test": ["127.0.0.1"]})  # a name no real resolver knows
        out = deliver(
            f"http://receiver.test:{port}/in", SECRET, BODY, kind="ping", delivery_id=uuid.uuid4(),
            resolver=dns, allow_private=True,
        )  # fmt: skip
        assert out.delivered, out.error
        assert dns.asked == ["receiver.test"]  # one resolution, and the socket used its answer
        assert rx.requests[0].headers["Host"] == f"receiver.test:{port}"


def test_a_redirect_is_not_followed() -> None:
    with Receiver(statuses=[302]) as rx:
        out = deliver(rx.url, SECRET, BODY, kind="ping", delivery_id=uuid.uuid4(), allow_private=True)
        assert out.status == 302 and not out.delivered
        assert [r.path for r in rx.requests] == ["/hook"]


def test_a_receiver_that_never_answers_costs_one_deadline() -> None:
    with Receiver(hang=True) as rx:
        started = time.monotonic()
        out = deliver(rx.url, SECRET, BODY, kind="ping", delivery_id=uuid.uuid4(), allow_private=True, timeout_s=0.5)
        took = time.monotonic() - started
        assert not out.delivered and out.status is None and "timed out" in (out.error or "")
        assert 0.4 <= took < 2.0


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``receiver.test`` (valid from now on, two days), and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=receiver.test", "-addext", "subjectAltName=DNS:receiver.test"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_https_to_the_checked_address_verifies_the_certificate_against_the_url_host(certificate) -> None:
    cert, key = certificate
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    trust = ssl.create_default_context(cafile=str(cert))
    with Receiver(tls=served) as rx:
        port = rx.server.server_address[1]
        dns = Resolver({"receiver.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
        out = deliver(
            f"https://receiver.test:{port}/in", SECRET, BODY, kind="ping", delivery_id=uuid.uuid4(),
            resolver=dns, allow_private=True, tls_context=trust,
        )  # fmt: skip
        assert out.delivered, out.error
        assert signing.verify(SECRET, rx.requests[0].headers[signing.HEADER], rx.requests[0].body)
        # the same address under another name: the certificate does not name it, nothing is posted
        wrong = deliver(
            f"https://other.test:{port}/in", SECRET, BODY, kind="ping", delivery_id=uuid.uuid4(),
            resolver=dns, allow_private=True, tls_context=trust,
        )  # fmt: skip
        assert not wrong.delivered and "certificate" in (wrong.error or "").lower()
        assert len(rx.requests) == 1
