"""`sentiment-stream simulate`."""

import click


@click.command()
def simulate() -> None:
    """Replay TweetEval into Kafka like a real firehose."""
    raise click.ClickException("not implemented yet")
