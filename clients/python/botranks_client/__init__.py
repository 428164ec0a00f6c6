"""BotRanks client (placeholder until written)."""
