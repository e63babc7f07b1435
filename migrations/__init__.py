"""Alembic migrations of the PostgreSQL schema (``sentiment-stream db upgrade``)."""
