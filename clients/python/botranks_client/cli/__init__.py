"""People-facing commands that talk to a running BotRanks over HTTP, through ``botranks_client``.

``botranks orders import FILE`` (a broker's CSV or JSONL of fills), ``botranks state``,
``botranks performance`` and ``botranks nav``. Configured by ``BOTRANKS_URL``, ``FQ_API_KEY`` and
``FQ_STRATEGY_ID`` (or ``--url``/``--api-key``/``--strategy``). Errors are one line on stderr and
exit code 2; an import with rejected rows exits 1.
"""

from .commands import add_commands

__all__ = ["add_commands"]
