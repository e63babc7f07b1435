"""sentiment-stream: Kafka -> ONNX sentiment scoring -> PostgreSQL, observable with Prometheus.

This package is the top layer: the ``sentiment-stream`` console script that wires every
package's commands into one CLI.
"""

from stream_core import __version__

__all__ = ["__version__"]
