"""The streaming consumer: Kafka -> validated posts -> micro-batches -> scores -> Postgres."""
