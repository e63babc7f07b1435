"""Small stand-ins for the model and the pipeline, for API and observer unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from stream_core.contract import LABELS
from stream_core.events import CommittedBatch
from stream_core.records import ScoredPost


class FakeMetadata(BaseModel):
    version: str = "fake-1"
    labels: list[str] = list(LABELS)
    metrics: dict[str, Any] | None = None


@dataclass(frozen=True)
class FakePrediction:
    label: str
    probabilities: dict[str, float]


@dataclass
class FakeScorer:
    """Negative when the text says "bad", positive when it says "good", else neutral."""

    metadata: FakeMetadata = field(default_factory=FakeMetadata)
    calls: list[str] = field(default_factory=list)
    name: str | None = "default"
    folder: Path | None = Path("/models/default")

    @property
    def labels(self) -> Sequence[str]:
        return self.metadata.labels

    @property
    def version(self) -> str:
        return self.metadata.version

    def predict(self, text: str) -> FakePrediction:
        self.calls.append(text)
        label = "negative" if "bad" in text else "positive" if "good" in text else "neutral"
        probabilities = {name: 0.8 if name == label else 0.1 for name in self.labels}
        return FakePrediction(label, probabilities)


def scored_post(label: str, offset: int, gold: str | None = None) -> ScoredPost:
    return ScoredPost(
        post_id=f"p{offset}",
        text=f"post {offset}",
        author="a",
        lang="en",
        created_at=None,
        label=label,
        probabilities=tuple(0.8 if name == label else 0.1 for name in LABELS),
        topic="posts",
        partition=0,
        offset=offset,
        kafka_timestamp=None,
        gold_label=gold,
    )


def committed(
    labels: Sequence[str], at: datetime | None = None, gold: Sequence[str | None] | None = None
) -> CommittedBatch:
    golds = list(gold) if gold is not None else [None] * len(labels)
    posts = [
        scored_post(label, i, g) for i, (label, g) in enumerate(zip(labels, golds, strict=True))
    ]
    return CommittedBatch(
        posts=posts,
        inserted=len(posts),
        committed_at=at or datetime.now(UTC),
        model_version="fake-1",
    )
