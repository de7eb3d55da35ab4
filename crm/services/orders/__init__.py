"""Orders: the one recording path, single orders, the order queries, webhooks and imports."""
