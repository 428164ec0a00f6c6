"""Follows: what a follower is told about a strategy (``events``), who follows what and the webhooks
that deliver it (see docs/notes/webhooks.md)."""
