"""The demo's replay and its live part: ``replay`` (the market up to a day, the sample bots' payloads
sent through the API), ``live`` (the live bots' hourly trades and the sample bots' daily closes, as
they happen) and ``main`` (``python -m services.demo_live.main``, the process ``botranks up`` runs)."""
