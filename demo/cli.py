"""`sentiment-stream demo` and `sentiment-stream stack up`."""

import click


@click.command()
def demo() -> None:
    """Run the whole product on an embedded broker and PostgreSQL."""
    raise click.ClickException("not implemented yet")


@click.group()
def stack() -> None:
    """Start the embedded broker and PostgreSQL alone."""
