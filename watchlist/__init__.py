"""Watchlists: the entities users follow (brands, products, people), their match rules, the
matcher that finds them in posts, and the per-batch step that records which ones each post names.

The rules and the matcher are pure (no database, no Kafka); the entities themselves live in
PostgreSQL (``storage.watch_entities``) so every replica matches the same list.
"""
