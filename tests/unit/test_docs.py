"""The docs cannot rot: every ``sentiment-stream`` command that the README and the docs show is
parsed by the real click command tree (unknown commands and options, bad values and missing
required options fail here)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import click
import pytest

from sentiment_stream.cli import main
from tests.fixtures.docs import DOCS, FENCED
from tests.fixtures.services import ROOT

INLINE = re.compile(r"`((?:sentiment-stream|python -m sentiment_stream) [^`]+)`")
SHELL = {"bash", "sh", "shell", "console"}
SEPARATORS = {"&&", "||", ";", "|", "&"}
OPTIONAL = re.compile(r"\[(--[^\[\]]*)\]")  # [--option VALUE] in a usage line


def shell_commands(text: str) -> Iterator[list[str]]:
    """Each simple command of a shell snippet, as words (comments and line continuations gone)."""
    for line in OPTIONAL.sub(r"\1", text.replace("\\\n", " ")).splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        for token in lexer:
            if token in SEPARATORS:
                yield command
                command = []
            else:
                command.append(token)
        yield command


def cli_arguments(words: list[str]) -> list[str] | None:
    """The arguments given to our CLI by one shell command, or None when it runs something else."""
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        words = words[1:]  # VAR=value prefixes
    if words[:1] == ["sentiment-stream"]:
        return words[1:]
    if words[:3] in (["python", "-m", "sentiment_stream"], ["python3", "-m", "sentiment_stream"]):
        return words[3:]
    return None


def documented_invocations() -> Iterator[tuple[str, list[str]]]:
    for path in DOCS:
        text = path.read_text()
        where = path.relative_to(ROOT)
        for language, body in FENCED.findall(text):
            if language in SHELL:
                for words in shell_commands(body):
                    arguments = cli_arguments(words)
                    if arguments is not None:
                        yield f"{where}: {shlex.join(words)}", arguments
        for span in INLINE.findall(FENCED.sub("", text)):
            words = shlex.split(span)
            arguments = cli_arguments(words)
            assert arguments is not None
            # A table cell lists alternatives: `sentiment-stream model export\|train`.
            head, _, alternatives = " ".join(arguments).partition(" ")
            for alternative in alternatives.replace("\\|", "|").split("|") if "|" in span else [""]:
                chosen = [head, *alternative.split()] if alternative else arguments
                yield f"{where}: `{span}`", chosen


INVOCATIONS = list(documented_invocations())


def test_the_docs_show_commands() -> None:
    assert len(INVOCATIONS) > 20


@pytest.mark.parametrize(("where", "arguments"), INVOCATIONS, ids=[w for w, _ in INVOCATIONS])
def test_a_documented_command_parses(where: str, arguments: list[str]) -> None:
    command: click.Command = main
    context = main.make_context("sentiment-stream", [], resilient_parsing=True)
    rest = list(arguments)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        found = command.get_command(context, name)
        assert found is not None, f"{where}: no command {name!r} in {command.name!r}"
        command = found
        context = command.make_context(name, [], parent=context, resilient_parsing=True)
    if not rest:
        return  # a command named, without arguments: its existence is the claim
    try:
        command.make_context(command.name or "", rest, parent=context.parent)
    except click.exceptions.Exit:  # --help, --version
        pass
    except click.BadParameter as error:
        # Paths in the docs are the reader's (DIR, their checkpoint): only their existence may fail.
        if not isinstance(error.param and error.param.type, click.Path):
            pytest.fail(f"{where}: {error.format_message()}")
    except click.UsageError as error:
        pytest.fail(f"{where}: {error.format_message()}")
