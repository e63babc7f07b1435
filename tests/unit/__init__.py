"""No broker, no database, seconds in all: ``pytest tests/unit`` is the fast loop."""
