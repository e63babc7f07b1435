"""The simulator producer's parts, without a broker (its runs against one:
tests/integration/test_simulator.py; its command: tests/e2e/test_simulate_cli.py)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import KafkaException

from embedded.process import free_port
from model.data import LabelledTweet
from producer_sim.cli import simulate
from producer_sim.download import DownloadError, download_tweeteval
from producer_sim.pacing import Pacer
from producer_sim.poison import PoisonKind, poison_value
from producer_sim.posts import AuthorPool, EntityMentions, Spike, TweetPicker, post_fields
from producer_sim.topics import ensure_topic
from stream_core.contract import MAX_TEXT_CHARS
from watchlist.matcher import Matcher
from watchlist.rules import WatchEntity


def test_download_offline_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"could not download http://127\.0\.0\.1:9/sentiment"):
        download_tweeteval(["val"], tmp_path, base_url="http://127.0.0.1:9", timeout_s=2)
    assert not list((tmp_path / "sentiment").iterdir())  # no half-written file left


def test_pacer_deadlines_are_absolute() -> None:
    now = [100.0]
    pacer = Pacer(50.0, clock=lambda: now[0])
    now[0] = 100.5  # a slow send does not push later deadlines back
    assert pacer.wait_s(25) == 0.0
    assert pacer.wait_s(30) == pytest.approx(0.1)
    assert pacer.offset(30) == pytest.approx(0.6)
    assert Pacer(0, clock=lambda: now[0]).wait_s(10**6) == 0.0


def test_spike_draws_the_asked_negative_share() -> None:
    tweets = [LabelledTweet(f"t{i}", i % 3, i) for i in range(300)]
    picker = TweetPicker(tweets, random.Random(1), spike=Spike(10, 5, 0.9))
    inside = [picker.next(12.0) for _ in range(2000)]
    share = sum(t is not None and t.label_id == 0 for t in inside) / len(inside)
    assert share == pytest.approx(0.9, abs=0.03)
    outside = [picker.next(1.0) for _ in range(300)]
    assert outside == tweets  # the replay is untouched by the spike
    assert picker.next(1.0) is None


def test_an_entity_spike_turns_only_the_posts_naming_the_entity_negative() -> None:
    tweets = [LabelledTweet(f"t{i}", i % 3, i) for i in range(300)]
    spike = Spike(10, 5, 0.9, entity="acme")
    picker = TweetPicker(tweets, random.Random(1), loop=True, spike=spike)
    named = [picker.next(12.0, names_entity=True) for _ in range(2000)]
    assert sum(t is not None and t.label_id == 0 for t in named) / 2000 == pytest.approx(
        0.9, abs=0.03
    )
    others = [picker.next(12.0) for _ in range(300)]  # the rest of the stream replays as usual
    assert others == tweets
    assert [picker.next(1.0, names_entity=True) for _ in range(300)] == tweets  # before: too
    assert spike.covers(12.0, True) and not spike.covers(12.0, False)
    assert not spike.covers(1.0, True)
    assert Spike(10, 5, 0.9).covers(12.0, False)  # a spike about nothing in particular: all posts


def test_entity_mentions_name_the_entity_in_a_share_of_posts_as_a_watched_keyword_finds_it() -> (
    None
):
    mentions = EntityMentions("acme", 0.25, random.Random(3))
    draws = [mentions.draw() for _ in range(4000)]
    assert sum(draws) / len(draws) == pytest.approx(0.25, abs=0.02)
    texts = {mentions.mention("my order is late again") for _ in range(100)}
    assert texts == {
        "my order is late again acme",
        "@acme my order is late again",
        "my order is late again #acme",
    }
    matcher = Matcher([WatchEntity(name="acme", keywords=["acme"])])
    assert all(matcher.entities_in(text) == ("acme",) for text in texts)


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--spike-entity", "acme"], "--spike-entity needs --spike-at and --spike-duration"),
        (["--spike-entity", "Acme Corp"], "lower-case letters, digits and _ . -"),
    ],
)
def test_spike_entity_flag_errors_are_clear(flags: list[str], error: str) -> None:
    result = CliRunner().invoke(simulate, ["--bootstrap-servers", "127.0.0.1:9", *flags])
    assert result.exit_code == 2
    assert error in result.output


def test_authors_are_stable_with_a_seed() -> None:
    first = [AuthorPool(50, random.Random(7)).next() for _ in range(3)]
    again = [AuthorPool(50, random.Random(7)).next() for _ in range(3)]
    assert first == again
    assert all(name.startswith("user-00") for name in first)


@pytest.mark.parametrize("kind", list(PoisonKind))
def test_each_poison_kind_is_malformed_its_own_way(kind: PoisonKind) -> None:
    value = poison_value(kind, post_fields("id-1", "hello there", "user-0001", "en"))
    if kind is PoisonKind.BAD_UTF8:
        with pytest.raises(UnicodeDecodeError):
            value.decode("utf-8")
        return
    if kind is PoisonKind.BAD_JSON:
        with pytest.raises(json.JSONDecodeError):
            json.loads(value)
        return
    decoded = json.loads(value)
    checks: dict[PoisonKind, Callable[[Any], bool]] = {
        PoisonKind.NOT_AN_OBJECT: lambda d: isinstance(d, list),
        PoisonKind.MISSING_TEXT: lambda d: "text" not in d and d["id"] == "id-1",
        PoisonKind.WRONG_TYPE: lambda d: d["text"] == 42,
        PoisonKind.EMPTY_TEXT: lambda d: d["text"].strip() == "",
        PoisonKind.OVERSIZED_TEXT: lambda d: len(d["text"]) > MAX_TEXT_CHARS,
        PoisonKind.BAD_TIMESTAMP: lambda d: d["created_at"] == "yesterday at noon",
    }
    assert checks[kind](decoded)


def test_an_unreachable_broker_fails_at_once_not_at_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(KafkaException, match="Connection refused"):
        ensure_topic({"bootstrap.servers": f"127.0.0.1:{free_port()}"}, "posts", 1, timeout_s=60)
    assert time.monotonic() - started < 30
