"""Per-process caches of the authenticated reads ``GET /state``, ``/performance`` and ``/nav`` (JSON).

An answer is kept as its JSON bytes under the versions it depends on, as the key check of its request
read them (``libs.infra.key_gate``: in the same round trip as the rate limit, in a snapshot taken after
the request arrived): the strategy's NAV version (``rm_ledger.updated_at``, which moves with every
projection or re-mark of the strategy: the pages' and /performance's version), its base currency and
benchmark, the price cache's version and the trials' version. A change of any of them is a new key, so
a hit is never older than what the database held when the request arrived: read-your-writes holds
without waiting for anything. A miss computes the answer as before (in a worker thread, from data at
least as new as the key) and keeps it; old keys fall out of an LRU. See docs/NOTES.md "The authenticated read path".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import msgspec
from anyio import to_thread
from litestar.serialization import default_serializer

from libs.infra.key_gate import Checked

#: the same bytes as ``ExactJSONResponse`` writes (Decimals as exact JSON numbers)
_encode = msgspec.json.Encoder(enc_hook=default_serializer, decimal_format="number").encode

SIZE = 8192
#: at most this many bytes of answers per process (a /nav of years of days is ~100 kB)
MAX_BYTES = 64 * 1024 * 1024


class ReadCache:
    """One LRU of encoded answers per kind of read (only touched on the event loop: no lock)."""

    def __init__(self, size: int = SIZE, max_bytes: int = MAX_BYTES) -> None:
        self.size, self.max_bytes = size, max_bytes
        self._answers: OrderedDict[Hashable, bytes] = OrderedDict()
        self.bytes = self.hits = self.misses = 0

    async def answer(self, key: Hashable, compute: Callable[[], Any]) -> tuple[bytes, bool]:
        """The encoded answer under ``key``, computed by ``compute`` (in a worker thread) on a miss; and
        whether it was computed."""
        found = self._answers.get(key)
        if found is not None:
            self._answers.move_to_end(key)
            self.hits += 1
            return found, False
        self.misses += 1
        body = await to_thread.run_sync(lambda: _encode(compute()))
        if len(body) <= self.max_bytes // 8:  # a very long NAV history is served, not kept
            previous = self._answers.pop(key, None)
            self.bytes += len(body) - (len(previous) if previous is not None else 0)
            self._answers[key] = body
            while len(self._answers) > self.size or self.bytes > self.max_bytes:
                self.bytes -= len(self._answers.popitem(last=False)[1])
        return body, True


def state_key(checked: Checked, strategy_id: Any) -> tuple:
    """What ``/state`` depends on: the ledger's rows (NAV version), the base currency, the positions'
    quote currencies (recorded with the price cache: its version)."""
    return ("state", strategy_id, checked.nav_version, checked.verdict.base_currency, checked.price_version)


def nav_key(checked: Checked, strategy_id: Any, start: Any, end: Any) -> tuple:
    """What ``/nav`` (JSON) depends on: the NAV rows (written with the NAV version), the base currency."""
    return ("nav", strategy_id, checked.nav_version, checked.verdict.base_currency, start, end)


def performance_key(checked: Checked, strategy_id: Any, benchmark: str | None, rate: float) -> tuple:
    """What ``/performance`` depends on (``readers.PerformanceKey``'s parts as versions): the NAV, the
    strategy's benchmark and base currency, every price (benchmark closes and FX rates), the trials."""
    verdict = checked.verdict
    return (
        "performance", strategy_id, checked.nav_version, benchmark, rate, verdict.benchmark,
        verdict.base_currency, checked.price_version, checked.trials_version,
    )  # fmt: skip
