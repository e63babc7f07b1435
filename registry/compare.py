"""How a shadow version compares with the version that served the same posts: agreement and
the confusion between the two (``shadow_scores``), and the online quality of both on the
labelled posts among them (``storage.quality``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from storage.quality import paired_with_shadow
from storage.shadow_scores import shadow_confusion


@dataclass(frozen=True)
class Comparison:
    shadow_version: str
    since: datetime
    shadowed: int  # posts the shadow scored in the window
    agreement: float | None  # share of them labelled alike; None when none
    # served version -> its label -> the shadow's label -> posts
    confusion: dict[str, dict[str, dict[str, int]]]
    served_quality: dict[str, Any]  # the serving versions, on the labelled shadowed posts
    shadow_quality: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {
            "shadow_version": self.shadow_version,
            "since": self.since.isoformat(),
            "shadowed": self.shadowed,
            "agreement": self.agreement,
            "confusion": self.confusion,
            "served_quality": self.served_quality,
            "shadow_quality": self.shadow_quality,
        }


def compare(conn: psycopg.Connection[Any], shadow_version: str, since: timedelta) -> Comparison:
    """``shadow_version`` against the versions that served the posts it scored in the last
    ``since``."""
    start = datetime.now(UTC) - since
    counts = shadow_confusion(conn, shadow_version, start)
    served, shadowed = paired_with_shadow(conn, shadow_version, since=start)
    confusion: dict[str, dict[str, dict[str, int]]] = {}
    for (version, served_label, shadow_label), count in sorted(counts.items()):
        confusion.setdefault(version, {}).setdefault(served_label, {})[shadow_label] = count
    total = sum(counts.values())
    agreed = sum(count for (_, a, s), count in counts.items() if a == s)
    return Comparison(
        shadow_version=shadow_version,
        since=start,
        shadowed=total,
        agreement=agreed / total if total else None,
        confusion=confusion,
        served_quality=served.document(),
        shadow_quality=shadowed.document(),
    )
