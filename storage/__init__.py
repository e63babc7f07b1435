"""PostgreSQL: schema (Alembic, in ``migrations/``), the batch sink and dashboard queries."""
