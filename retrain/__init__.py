"""Retraining from feedback: labelled posts from PostgreSQL -> a leak-free data set -> a
fine-tuned candidate -> the gate against the active version -> the registry (shadow, promote)."""
