"""The ``sentiment-stream`` console script: wires the packages' commands into one CLI.

Each package owns its command group; imports of heavy libraries (onnxruntime, torch) happen
inside the commands so that ``--help`` stays instant.
"""

from __future__ import annotations

import click

from consumer.cli import consume
from demo.cli import demo, stack
from model.cli import model
from monitoring.cli import monitor
from producer_sim.cli import simulate
from registry.cli import COMMANDS as REGISTRY_COMMANDS
from retrain.cli import retrain
from storage.cli import db
from stream_core import __version__
from watchlist.cli import watch


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sentiment-stream")
def main() -> None:
    """Score a Kafka stream of posts for sentiment and store the results in PostgreSQL."""


for command in (consume, db, model, monitor, simulate, demo, stack, watch):
    main.add_command(command)
for command in (*REGISTRY_COMMANDS, retrain):  # beside the model's own commands
    model.add_command(command)
