"""Prometheus metrics, the HTTP API and spike alerting of the consumer process."""
