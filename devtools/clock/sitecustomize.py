"""A test clock for every Python process of a test run: with this directory on ``PYTHONPATH`` and
``TEST_CLOCK_SHIFT_S`` set, Python starts with its wall clock (``datetime.now``, ``date.today``,
``time.time``...) moved forward by that many seconds, ticking (time-machine). The monotonic
clocks, sleeps and timeouts are left alone. ``.ci/run`` uses it to run the date-sensitive tests
on a weekend day: the test process and every service it starts (they inherit the environment)
share the one shifted clock (the variable is not ``BOTRANKS_*``: ``BotranksUp`` drops those).

Forward only: PostgreSQL's ``now()`` keeps the real time, and a session's ``expires_at``
(written from Python's clock) must not lie before it. libfaketime (LD_PRELOAD) is not used:
with an offset, Python 3.11's lock timeouts (``sem_clockwait``) hang under it, or its
``time.sleep`` fails with EINVAL when monotonic clocks are left real.
"""

import os
from datetime import UTC

_shift = os.environ.get("TEST_CLOCK_SHIFT_S", "").strip()
if _shift:
    from datetime import datetime, timedelta

    import time_machine

    seconds = float(_shift)
    if seconds < 0:
        raise SystemExit("TEST_CLOCK_SHIFT_S must be >= 0 (PostgreSQL's clock is not shifted)")
    time_machine.travel(datetime.now(UTC) + timedelta(seconds=seconds), tick=True).start()
