"""The front door of ``botranks up``: Caddy in front of the two APIs, and the ops app beside them.

``routes.py`` is where each request goes (also checked against deploy/'s proxies), ``caddy.py``
writes and runs Caddy's configuration, ``ops.py`` answers the aggregate health, readiness,
metrics and the merged OpenAPI schema.
"""
