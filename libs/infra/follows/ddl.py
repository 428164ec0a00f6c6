"""The follows' tables, by the migration version that creates them (``schema`` applies every owner's
pieces of a version in one ordered sequence; the text is what was applied: never edited)."""

from __future__ import annotations

MIGRATIONS: dict[int, str] = {
    19: """
    CREATE TABLE follows (
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        strategy_id uuid NOT NULL REFERENCES strategies(id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (user_id, strategy_id)
    );
    CREATE INDEX follows_strategy_idx ON follows (strategy_id);
    -- the secret signs every delivery (the receiver verifies it): kept as given, shown to its owner once
    CREATE TABLE webhooks (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        url text NOT NULL,
        secret text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
    );
    CREATE INDEX webhooks_user_idx ON webhooks (user_id);
    -- the notifier's outbox and delivery log: one row per (webhook, event), its last response
    CREATE TABLE webhook_deliveries (
        id uuid PRIMARY KEY,
        webhook_id uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        event_id uuid NOT NULL,
        strategy_id uuid REFERENCES strategies(id) ON DELETE CASCADE,
        kind text NOT NULL,
        body text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        state text NOT NULL DEFAULT 'pending',
        attempts int NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        last_attempt_at timestamptz,
        last_status int,
        last_ms int,
        last_response text,
        last_error text,
        UNIQUE (webhook_id, event_id)
    );
    CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
    CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (webhook_id, created_at DESC);
    """,
}
