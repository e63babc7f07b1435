"""The model registry: model versions stored in PostgreSQL, promoted, shadowed and rolled back
while the consumers run (docs/models.md)."""
