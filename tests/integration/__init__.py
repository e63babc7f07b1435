"""Against a real broker, PostgreSQL and Prometheus (started by the fixtures), and real training."""
