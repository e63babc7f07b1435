"""The ``sentiment-stream`` commands run as users run them: child processes."""
