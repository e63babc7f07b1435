"""CLI flags for settings: one ``--kebab-case`` flag per field of a settings section, generated
from the section so that flags and settings can never drift apart; and the loading of a
section from those flags over the environment, with one clear error for bad values."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
from pydantic import SecretStr, ValidationError

from stream_core import kafka
from stream_core.settings import SettingsSection

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=SettingsSection)


def _option_for(section: type[SettingsSection], name: str) -> click.Option:
    field = section.model_fields[name]
    if name == "kafka_options":
        return click.Option(
            ["--kafka-option", name],
            multiple=True,
            metavar="KEY=VALUE",
            help="Extra librdkafka property, repeatable (also: any KAFKA_* variable).",
        )
    annotation = field.annotation
    click_type: click.ParamType[Any] | type = str
    if annotation is int:
        click_type = int
    elif annotation is float:
        click_type = float
    elif annotation is Path:
        click_type = click.Path(path_type=Path)
    elif getattr(annotation, "__origin__", None) is Literal:
        click_type = click.Choice(list(annotation.__args__))  # type: ignore[union-attr]
    flag = "--" + name.replace("_", "-")
    return click.Option([flag, name], type=click_type, default=None, help=field.description or "")


def settings_options(section: type[SettingsSection], *names: str) -> Callable[[F], F]:
    """Add a CLI flag for each named field of ``section`` (every field when none is named).

    The command receives the flags in ``**kwargs``; pass them to :func:`load_settings`.
    """
    chosen = names or tuple(section.model_fields)

    def decorate(command: F) -> F:
        for name in reversed(chosen):
            command.__click_params__ = [  # type: ignore[attr-defined]
                *getattr(command, "__click_params__", []),
                _option_for(section, name),
            ]
        return command

    return decorate


def load_settings(section: type[S], flags: Mapping[str, Any]) -> S:
    """``section`` from the CLI flags over the environment; a clear error on bad values."""
    overrides = {k: v for k, v in flags.items() if k in section.model_fields and v is not None}
    if "kafka_options" in overrides:
        pairs: tuple[str, ...] = overrides.pop("kafka_options")
        extra = kafka.options_from_env(os.environ)
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise click.BadParameter(
                    f"expected KEY=VALUE, got {pair!r}", param_hint="--kafka-option"
                )
            extra[key.strip()] = SecretStr(value)
        overrides["kafka_options"] = extra
    try:
        return section(**overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in error.errors()
        )
        raise click.UsageError(f"invalid settings: {problems}") from None
