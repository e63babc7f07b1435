"""sentiment-stream: Kafka -> ONNX sentiment scoring -> PostgreSQL, observable with Prometheus."""

__version__ = "0.1.0"
