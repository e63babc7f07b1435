"""`sentiment-stream model ...`."""

import click


@click.group()
def model() -> None:
    """Export, train, evaluate and benchmark sentiment models."""
