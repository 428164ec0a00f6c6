"""The operator's tools, none of them a process of the service: the ``botranks`` command
(``cli.py``), ``botranks up``'s local runner (``supervisor.py``, the embedded PostgreSQL and
nats-server of ``embedded.py``, ``processes.py``), ``backup.py`` and ``demo.py``."""
