"""Model monitoring on the stream: online quality from late gold labels and input/output drift
against the model folder's reference profile, measured from PostgreSQL on a timer by one
elected replica (docs/monitoring.md)."""
