"""Migration scripts, one per revision, applied in order by ``sentiment-stream db upgrade``."""
