"""The one-command embedded demo and `stack up`."""
