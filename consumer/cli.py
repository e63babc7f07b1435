"""`sentiment-stream consume`."""

import click


@click.command()
def consume() -> None:
    """Consume posts from Kafka, score them and write them to PostgreSQL."""
    raise click.ClickException("not implemented yet")
