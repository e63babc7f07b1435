"""The simulator's late gold labels and drift scenario, without a broker."""

from __future__ import annotations

import json
import random
from collections import Counter

from model.data import LabelledTweet
from producer_sim.feedback import DRIFT_KINDS, Feedback, drifted
from stream_core.contract import LABELS

TWEETS = [LabelledTweet(f"tweet {i} @someone #tag", i % 3, i) for i in range(30)]


def test_labels_come_late_for_the_asked_share() -> None:
    feedback = Feedback(0.25, 30.0, random.Random(1))
    for i in range(400):
        feedback.offer(f"p{i}", b"k", LABELS[i % 3], sent_s=i / 10)
    waiting = len(feedback)
    assert 70 < waiting < 130
    assert feedback.due(29.9) == []  # nothing is due before its delay
    first = feedback.due(31.0)
    assert first and all(
        json.loads(v)["post_id"]
        in {"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10"}
        for _, v in first
    )
    rest = feedback.due(1e9)
    assert len(first) + len(rest) == waiting
    ids = [int(json.loads(v)["post_id"][1:]) for _, v in first + rest]
    assert ids == sorted(ids)  # oldest first
    for _, value in rest:
        document = json.loads(value)
        assert document["label"] == LABELS[int(document["post_id"][1:]) % 3]


def test_shuffled_labels_mostly_disagree_but_keep_the_mix() -> None:
    feedback = Feedback(1.0, 0.0, random.Random(2), shuffle=True)
    for i in range(900):
        feedback.offer(f"p{i}", b"k", LABELS[i % 3], sent_s=0)
    labels = [json.loads(v) for _, v in feedback.due(0)]
    agree = sum(d["label"] == LABELS[int(d["post_id"][1:]) % 3] for d in labels)
    assert agree / len(labels) < 0.5
    assert min(Counter(d["label"] for d in labels).values()) > 200


def test_the_drift_scenario_changes_what_posts_look_like() -> None:
    rng = random.Random(3)
    posts = [drifted(TWEETS[i], i, TWEETS, rng) for i in range(8)]
    assert posts[0].text == TWEETS[0].text.upper()
    assert not any(c.isalnum() for c in posts[1].text)  # emoji only
    assert len(posts[2].text) > 4 * len("tweet 2") and "@" not in posts[2].text
    assert posts[3].label_id == 0  # negative only
    assert len(DRIFT_KINDS) == 4


def test_durations_read_like_people_write_them() -> None:
    import click
    import pytest

    from producer_sim.cli import DURATION

    assert [DURATION.convert(v, None, None) for v in ("500ms", "30s", "2m", "1h", "45", 3)] == [
        0.5,
        30.0,
        120.0,
        3600.0,
        45.0,
        3.0,
    ]
    with pytest.raises(click.BadParameter, match="like 500ms"):
        DURATION.convert("soon", None, None)
