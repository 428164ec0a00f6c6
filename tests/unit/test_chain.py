"""The hash chain's pure part: digests, links, the JSONL line format and its verification."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botranks_domain.chain import ChainMismatch, Link, digest, extend, from_hex, line, to_hex, verify_lines

T0 = datetime(2025, 3, 3, 23, 59, tzinfo=UTC)


def test_digest_is_sha256_of_previous_and_event():
    first = digest(None, b'{"a":1}')
    assert first == hashlib.sha256(b'{"a":1}').digest()
    assert digest(first, b'{"b":2}') == hashlib.sha256(first + b'{"b":2}').digest()
    assert from_hex(to_hex(first)) == first and len(to_hex(first)) == 64


def test_extend_numbers_links_and_dates_them_by_arrival():
    events = [(5, T0, b"e1"), (9, T0 + timedelta(minutes=2), b"e2")]
    links = extend(None, events)
    assert [(l.seq, l.notification_id, l.day) for l in links] == [(1, 5, date(2025, 3, 3)), (2, 9, date(2025, 3, 4))]
    assert links[1].digest == digest(digest(None, b"e1"), b"e2")
    more = extend(links[-1], [(12, T0 + timedelta(hours=1), b"e3")])
    assert more[0].seq == 3 and more[0].digest == digest(links[1].digest, b"e3")


def test_a_day_never_goes_backwards_along_the_chain():
    head = extend(None, [(1, T0 + timedelta(days=1), b"x")])[-1]
    late = extend(head, [(2, T0, b"y")])[0]  # arrival clock behind the previous link's
    assert late.day == head.day and late.created_at == T0


def test_offsets_are_read_in_utc():
    paris = timezone(timedelta(hours=1))
    link = extend(None, [(1, datetime(2025, 3, 4, 0, 30, tzinfo=paris), b"x")])[0]
    assert link.day == date(2025, 3, 3)


def download(events: list[bytes]) -> list[bytes]:
    links = extend(None, [(10 + i, T0, e) for i, e in enumerate(events)])
    return [line(link, e) for link, e in zip(links, events)]


def test_line_format_keeps_the_event_verbatim():
    event = b'{"order":{"quantity":1.50,"note":"a \\"quoted\\" }"}}'
    [text] = download([event])
    assert text.endswith(b"}\n")
    fields = json.loads(text)
    assert fields["seq"] == 1 and fields["notification_id"] == 10
    assert fields["digest"] == to_hex(digest(None, event))
    assert text[text.index(b'"event":') + 8 : -2] == event


@given(st.lists(st.binary(min_size=1, max_size=40).map(lambda b: json.dumps(b.hex()).encode()), max_size=12))
def test_verify_lines_recomputes_a_download(events):
    lines = download(events)
    count, head = verify_lines(lines)
    assert count == len(events)
    assert head == (to_hex(extend(None, [(1, T0, e) for e in events])[-1].digest) if events else None)
    assert verify_lines([x.decode() for x in lines]) == (count, head)  # text lines too


@pytest.mark.parametrize("tamper", ["event", "digest", "drop", "swap"])
def test_verify_lines_detects_tampering(tamper):
    lines = download([b'{"n":1}', b'{"n":2}', b'{"n":3}'])
    if tamper == "event":
        lines[1] = lines[1].replace(b'{"n":2}', b'{"n":7}')
    elif tamper == "digest":
        lines[2] = lines[2].replace(json.loads(lines[2])["digest"].encode(), b"0" * 64)
    elif tamper == "drop":
        del lines[1]
    else:
        lines[0], lines[1] = lines[1], lines[0]
    with pytest.raises(ChainMismatch):
        verify_lines(lines)


def test_link_is_a_value():
    assert Link(1, 2, b"d", date(2025, 1, 1), T0) == Link(1, 2, b"d", date(2025, 1, 1), T0)
