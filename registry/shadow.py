"""A version scoring posts on the side: the ``shadow_scores`` rows for posts another version
served (live, by the consumers' shadow scoring; after the fact, by ``model rescore``)."""

from __future__ import annotations

from collections.abc import Sequence

from model.scorer import Scorer
from storage.shadow_scores import ShadowRow
from stream_core.records import ScoredPost

PROBABILITY_ORDER = ("negative", "neutral", "positive")


def shadow_rows(scorer: Scorer, posts: Sequence[ScoredPost]) -> list[ShadowRow]:
    """``scorer``'s label and probabilities for each post, beside the label it was served."""
    result = scorer.score([post.text for post in posts])
    labels, version = scorer.labels, scorer.version
    order = [labels.index(name) for name in PROBABILITY_ORDER]
    return [
        ShadowRow(
            topic=post.topic,
            partition=post.partition,
            offset=post.offset,
            kafka_timestamp=post.kafka_timestamp,
            post_id=post.post_id,
            model_version=version,
            label=labels[label_id],
            probabilities=(row[order[0]], row[order[1]], row[order[2]]),
            active_version=str(post.model_version),
            active_label=str(post.label),
        )
        for post, row, label_id in zip(
            posts, result.probabilities.tolist(), result.label_ids.tolist(), strict=True
        )
    ]
