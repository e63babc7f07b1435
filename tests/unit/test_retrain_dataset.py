"""The retrain data set: one example per post id and per text, majority labels, the newest
window held out, base data never leaking a held-out text; and the gate's decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from retrain.dataset import DatasetError, Example, Holdout, build, one_per_text, split, text_key
from retrain.gate import judge
from storage.labelled_posts import LabelledPost

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def post(
    i: int, label: str, text: str | None = None, *, minutes: int | None = None
) -> LabelledPost:
    at = T0 + timedelta(minutes=i if minutes is None else minutes)
    return LabelledPost(f"p{i}", text or f"tweet number {i}", label, at)


def test_text_key_folds_case_spaces_mentions_and_links() -> None:
    assert text_key("Hello  @bob  see http://x.co/1") == text_key("hello @alice see https://y")
    assert text_key("good") != text_key("not good")


def test_a_replayed_post_is_one_vote_and_its_newest_row_wins() -> None:
    rows = [post(1, "negative"), post(1, "positive", minutes=5), post(2, "neutral")]
    examples, disagreements, repeats = one_per_text(rows)
    assert repeats == 1
    assert disagreements == []
    assert {(e.post_ids, e.label) for e in examples} == {
        (("p1",), "positive"),
        (("p2",), "neutral"),
    }


def test_same_text_is_one_example_with_the_majority_label_and_a_reported_disagreement() -> None:
    rows = [
        post(1, "positive", "Great phone!"),
        post(2, "positive", "great  phone!"),
        post(3, "negative", "GREAT PHONE!"),
    ]
    examples, disagreements, _ = one_per_text(rows)
    assert [(e.label, e.post_ids) for e in examples] == [("positive", ("p1", "p2", "p3"))]
    assert disagreements[0].votes == {"positive": 2, "negative": 1}
    assert disagreements[0].kept == "positive"


def test_a_tie_is_dropped_and_reported() -> None:
    examples, disagreements, _ = one_per_text(
        [post(1, "positive", "meh"), post(2, "negative", "meh")]
    )
    assert examples == []
    assert disagreements[0].kept is None


def test_the_newest_share_is_held_out() -> None:
    examples, _, _ = one_per_text([post(i, "neutral") for i in range(10)])
    train, held = split(examples, Holdout.parse("20%"))
    assert [e.post_ids for e in held] == [("p8",), ("p9",)]
    assert len(train) == 8
    assert max(e.at for e in train if e.at) < min(e.at for e in held if e.at)


def test_the_newest_window_is_held_out() -> None:
    examples, _, _ = one_per_text([post(i, "neutral", minutes=i * 60) for i in range(10)])
    train, held = split(examples, Holdout.parse("3h"))
    assert [e.post_ids[0] for e in held] == ["p7", "p8", "p9"]
    assert len(train) == 7


def test_a_text_seen_early_and_late_is_held_out_whole() -> None:
    """The same text in an old and a new post: its one example is as new as its newest post,
    so it is held out and neither post trains."""
    rows = [post(0, "positive", "same words")] + [post(i, "neutral") for i in range(1, 9)]
    rows.append(post(9, "positive", "Same  words", minutes=100))
    data = build(rows, Holdout.parse("10%"))
    assert data.held_out_post_ids == {"p0", "p9"}
    assert not data.trained_post_ids & data.held_out_post_ids
    train_texts = {text_key(e.text) for e in data.train}
    assert not train_texts & {text_key(e.text) for e in data.held_out}


def test_base_data_never_brings_a_held_out_or_repeated_text() -> None:
    rows = [post(i, "neutral") for i in range(10)]
    base = [
        Example("TWEET number 9", "negative", (), None),  # held out (p9's text)
        Example("tweet number 1", "negative", (), None),  # trained on already
        Example("something new", "positive", (), None),
        Example("Something  new", "positive", (), None),  # twice in the base data
    ]
    data = build(rows, Holdout.parse("10%"), base)
    assert data.base_examples == 1
    assert data.base_dropped == 3
    assert [e.text for e in data.train[-1:]] == ["something new"]
    assert data.summary()["train_examples"] == 10


def test_holdout_specs_are_checked() -> None:
    assert Holdout.parse("25%").share == pytest.approx(0.25)
    assert Holdout.parse("2d").window == timedelta(days=2)
    for bad in ("0%", "100%", "x%", "2w", ""):
        with pytest.raises(DatasetError):
            Holdout.parse(bad)


def test_gate_promotes_only_a_candidate_that_beats_the_active_version_by_the_margin() -> None:
    assert judge(0.70, 0.65, 0.02).promote
    assert not judge(0.66, 0.65, 0.02).promote
    assert not judge(0.60, 0.65, 0.0).promote
    assert not judge(0.65, 0.65, 0.0).promote  # a tie is not better
    assert not judge(0.90, None, 0.0).promote  # never without an active version
    assert "no active version" in judge(0.90, None, 0.0).reason
    assert not judge(0.90, 0.10, None).promote  # not asked for


def test_the_command_refuses_a_bad_holdout_before_reaching_the_database() -> None:
    from click.testing import CliRunner

    from sentiment_stream.cli import main

    result = CliRunner().invoke(
        main,
        [
            "model",
            "retrain",
            "--holdout",
            "0%",
            "--database-url",
            "postgresql+psycopg://u@127.0.0.1:1/x",
        ],
    )
    assert result.exit_code == 1
    assert "holdout '0%': a share must be between 0% and 100%" in result.output
